"""Cleaning training text: Unicode, whitespace, control characters, PII, length limits.

Unicode. Text is NFKC-normalised, so full-width Latin letters and digits (``ＡＢＣ１２３``)
become ASCII and compatibility forms (ligatures, the ideographic space) their plain
equivalents. One exception keeps Chinese readable: full-width punctuation (``，！？：；（）``)
next to a CJK character stays full-width, because NFKC would turn ``你好，世界`` into
``你好,世界``, which is not how Chinese is written. Full-width punctuation between Latin
text becomes ASCII. Half-width punctuation is never turned into full-width (we do not guess).

Control characters (category Cc except newline and tab) and invisible format characters
(zero-width spaces, BOM, word joiner) are removed; tabs become spaces; runs of spaces
collapse to one; lines lose trailing spaces; more than one blank line becomes one.

Length. With a tokenizer (``--tokenizer MODEL``), an example's length is the token count of
the chat as the model's chat template renders it (or of the text); ``max_tokens`` bounds it.
``min_tokens`` bounds the content alone (the messages' texts without role markers), so a
template's overhead does not make an empty-ish example look long enough. Without a
tokenizer, tokens are estimated from characters: one per CJK character plus one per four
other characters (spaces included), the usual rule of thumb for English BPE vocabularies,
and 4 per message for the role markers.

PII. Optional masking replaces e-mail addresses, Chinese resident ID numbers (18
characters; the ISO 7064 checksum and the birth date must be valid, so a random 18-digit
number is left alone), bank card numbers (16-19 digits, contiguous or in groups of four;
the Luhn checksum must hold) and mainland mobile numbers (``1[3-9]`` + 9 digits, optional
``+86``) with ``[EMAIL]``, ``[ID]``, ``[CARD]`` and ``[PHONE]``.
"""

from __future__ import annotations

import datetime
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetune.data.load import Example

if TYPE_CHECKING:
    from assistant.settings import Settings

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# Full-width ASCII punctuation (U+FF01..FF0F, FF1A..FF20, FF3B..FF40, FF5B..FF5E) and the
# ideographic comma/full stop, which NFKC leaves alone anyway.
_FULLWIDTH_PUNCT = "".join(
    chr(c)
    for lo, hi in ((0xFF01, 0xFF0F), (0xFF1A, 0xFF20), (0xFF3B, 0xFF40), (0xFF5B, 0xFF5E))
    for c in range(lo, hi + 1)
)
_PUNCT_RUN = re.compile(f"[{re.escape(_FULLWIDTH_PUNCT)}]+")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def normalize_unicode(text: str) -> str:
    """NFKC, keeping full-width punctuation that touches a CJK character (see the module doc)."""
    out: list[str] = []
    position = 0
    for match in _PUNCT_RUN.finditer(text):
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if _CJK_CHAR.match(before) or _CJK_CHAR.match(after):
            out.append(unicodedata.normalize("NFKC", text[position : match.start()]))
            out.append(match.group(0))
            position = match.end()
    out.append(unicodedata.normalize("NFKC", text[position:]))
    return "".join(out)


def strip_control(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def normalize_whitespace(text: str) -> str:
    lines = [_SPACES.sub(" ", line).rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean_text(text: str) -> str:
    return normalize_whitespace(strip_control(normalize_unicode(text)))


# ---- PII ------------------------------------------------------------------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![\d-])(?:\d{16,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?)(?!\d)")
_PHONE = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})(?!\d)")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
PII_KINDS = ("EMAIL", "ID", "CARD", "PHONE")


def valid_resident_id(number: str) -> bool:
    """An 18-character PRC resident ID with a valid checksum and a real birth date."""
    if not _ID.fullmatch(number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17].upper():
        return False
    try:
        born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= datetime.date.today().year


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _valid_card(match: str) -> bool:
    digits = re.sub(r"[ -]", "", match)
    return 16 <= len(digits) <= 19 and luhn_valid(digits)


_PII_RULES: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("EMAIL", _EMAIL, lambda _: True),  # first: an address may hold a phone number
    ("ID", _ID, valid_resident_id),
    ("CARD", _CARD, _valid_card),
    ("PHONE", _PHONE, lambda _: True),
)


def mask_pii(text: str, counts: Counter[str] | None = None) -> str:
    """``text`` with PII replaced by ``[EMAIL]``, ``[ID]``, ``[CARD]``, ``[PHONE]``; ``counts`` is updated."""
    for kind, pattern, valid in _PII_RULES:

        def replace(match: re.Match[str], kind: str = kind, valid: Callable[[str], bool] = valid) -> str:
            if not valid(match.group(0)):
                return match.group(0)
            if counts is not None:
                counts[kind] += 1
            return f"[{kind}]"

        text = pattern.sub(replace, text)
    return text


# ---- length -----------------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    """One token per CJK character plus one per four other characters (see the module doc)."""
    cjk = len(_CJK_CHAR.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


class TokenCounter:
    """Counts tokens with a model's tokenizer, or estimates them from characters."""

    def __init__(self, tokenizer: Any = None, name: str = "estimate") -> None:
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def for_model(cls, model: str | None, settings: Settings) -> TokenCounter:
        """The tokenizer of a local model (pack or folder); ``None`` gives the estimate."""
        if not model:
            return cls()
        from assistant.errors import ConfigError
        from assistant.models.refs import parse_model_ref

        ref = parse_model_ref(model, settings)
        if ref.kind not in ("pack", "folder"):
            raise ConfigError(
                f"--tokenizer needs a local model (a pack or a folder), got {model!r}",
                hint="leave --tokenizer out to use the character-based estimate",
            )
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(ref.local_folder(settings))), name=model)

    def content(self, example: Example) -> int:
        """Tokens of the texts alone (what ``min_tokens`` is compared with)."""
        texts = [example.text] if example.is_text else [m["content"] for m in example.messages]
        if self.tokenizer is None:
            return sum(estimate_tokens(t) for t in texts)
        return sum(len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"])

    def count(self, example: Example) -> int:
        """Tokens the model sees: the chat as its template renders it (what ``max_tokens`` bounds)."""
        if example.is_text:
            return self.content(example)
        overhead = 4 * len(example.messages)  # role markers, when there is no chat template to ask
        if self.tokenizer is None or not getattr(self.tokenizer, "chat_template", None):
            return self.content(example) + overhead
        ids = self.tokenizer.apply_chat_template(example.messages, tokenize=True)
        if hasattr(ids, "keys"):  # a BatchEncoding in newer transformers
            ids = ids["input_ids"]
        return len(ids)


# ---- cleaning a set ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CleanConfig:
    min_tokens: int = 4
    max_tokens: int = 2048
    mask_pii: bool = False

    def __post_init__(self) -> None:
        if self.min_tokens < 0:
            raise ValueError(f"min_tokens must be >= 0, got {self.min_tokens}")
        if self.max_tokens <= self.min_tokens:
            raise ValueError(f"max_tokens must be > min_tokens, got {self.max_tokens} <= {self.min_tokens}")


@dataclass
class CleanResult:
    kept: list[Example]
    lengths: list[int]  # tokens, one per kept example
    dropped: Counter[str] = field(default_factory=Counter)  # empty / too_short / too_long
    changed: Counter[str] = field(default_factory=Counter)  # examples whose text a rule changed
    pii: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)  # reason -> source of the first dropped


def _clean_one(example: Example, config: CleanConfig, changed: Counter[str], pii: Counter[str]) -> Example:
    def fix(text: str) -> str:
        steps = (
            ("unicode", normalize_unicode),
            ("control_chars", strip_control),
            ("whitespace", normalize_whitespace),
        )
        for name, step in steps:
            new = step(text)
            if new != text:
                changed[name] += 1
                text = new
        if config.mask_pii:
            before = sum(pii.values())
            text = mask_pii(text, pii)
            if sum(pii.values()) != before:
                changed["pii"] += 1
        return text

    if example.is_text:
        return Example(
            text=fix(example.text), tags=example.tags, source=example.source, origin=example.origin
        )
    messages = [{"role": m["role"], "content": fix(m["content"])} for m in example.messages]
    return Example(
        messages,
        tags=example.tags,
        source=example.source,
        origin=example.origin,
        extra_probes=[fix(p) for p in example.extra_probes],
    )


def _is_empty(example: Example) -> bool:
    if example.is_text:
        return not example.text
    return not example.prompt.strip() or not example.response.strip()


def clean_examples(examples: Sequence[Example], config: CleanConfig, counter: TokenCounter) -> CleanResult:
    """Clean every example, then drop the empty, too-short and too-long ones, counting why."""
    result = CleanResult([], [])
    for example in examples:
        cleaned = _clean_one(example, config, result.changed, result.pii)
        reason = None
        tokens = 0
        if _is_empty(cleaned):
            reason = "empty"
        else:
            tokens = counter.count(cleaned)
            if counter.content(cleaned) < config.min_tokens:
                reason = "too_short"
            elif tokens > config.max_tokens:
                reason = "too_long"
        if reason:
            result.dropped[reason] += 1
            result.samples.setdefault(reason, cleaned.source)
            continue
        result.kept.append(cleaned)
        result.lengths.append(tokens)
    return result


__all__ = [
    "PII_KINDS",
    "CleanConfig",
    "CleanResult",
    "TokenCounter",
    "clean_examples",
    "clean_text",
    "estimate_tokens",
    "luhn_valid",
    "mask_pii",
    "normalize_unicode",
    "valid_resident_id",
]

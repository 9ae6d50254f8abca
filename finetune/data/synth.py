"""Synthetic training data from a knowledge base with a teacher model (knowledge distillation).

    generation = GenerateConfig(n=200)   # evaluation.generate.engine
    report = synthesize(kb, teacher, SynthConfig(paraphrase=2), suites=SuiteFiles(),
                        generate=lambda progress: generate_items(kb, teacher, generation, progress, "synth"))
    write_rows(report.rows, Path("synthetic.jsonl"))

The question/answer pairs come from the evaluation suite generator
(``evaluation.generate.engine.generate_items``, passed in by the caller: finetune does not
import evaluation): the same prompts, in the passage's language, and the same checks (JSON,
question form, language, grounding in the passage, near-duplicates).
Paraphrase augmentation then asks the teacher to rephrase each question ``paraphrase``
times; a paraphrase is kept only when it is not identical to the question (or to another
paraphrase of it), is still a question, is in the same language, keeps every number, every
capitalised or mixed-case name and every quoted phrase of the original, and is not more
than three times as long, and is not a near-copy of the question (character-shingle Jaccard
below the dedup threshold). Each kept pair is tagged ``synthetic`` (and ``paraphrase``) and
``from:<hash of the original question>``, then deduplicated and checked for leakage against
the evaluation suites exactly as ``ladder finetune prepare`` does (``assistant.leakage``):
when a question or any paraphrase of it matches an evaluation item, the whole group is dropped,
so a synthetic example never repeats an evaluation question in other words.

Rows are Alpaca JSONL (``instruction``, ``input``, ``output``, ``tags``, ``source``), ready
for ``ladder finetune prepare --domain``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from assistant.errors import ConfigError, LadderError
from assistant.progress import NullProgress, Progress
from assistant.text import ZH, as_question, language
from assistant.types import GenParams, Message
from finetune.data.dedup import (
    DEFAULT_THRESHOLD,
    Deduplicator,
    LeakageChecker,
    group_tag,
    load_eval_questions,
)
from finetune.data.load import Example

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.knowledge import KnowledgeBase
    from finetune.data.suites import SuiteReader

PARAPHRASE_REASONS = {
    "empty": "no question in the reply",
    "identical": "the same as the original question (after normalisation)",
    "duplicate": "the same as another paraphrase of the question",
    "not_a_question": "not phrased as a question",
    "wrong_language": "not in the original question's language",
    "lost_entities": "drops a number, name or quoted phrase of the original",
    "too_long": "more than three times as long as the original",
    "too_similar": "a near-copy of the original (character shingles at the dedup threshold)",
}
_PROMPTS = {
    "en": (
        "You rephrase questions.",
        "Rewrite the question below in different words. Keep its meaning, every number and every "
        "name. Reply with the new question only.\n\nQuestion: {question}",
    ),
    ZH: (
        "你负责改写问题。",
        "用不同的说法改写下面的问题，意思不变，保留所有数字和名称。只回复改写后的问题。\n\n问题：{question}",
    ),
}
_LABEL = re.compile(
    r"^\s*(?:rewritten question|new question|paraphrase|question|改写后的问题|改写|问题)\s*[:：]\s*",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_QUOTED = re.compile(r"[\"“「『]([^\"”」』]{2,})[\"”」』]")
_NAME = re.compile(r"\b[A-Za-z]*[A-Z0-9][A-Za-z0-9]*\b")


class NothingSynthesized(LadderError):
    """No example to write: the teacher wrote no valid pair, or none survived the checks."""

    exit_code = 1


class _Located(Protocol):
    @property
    def where(self) -> str: ...  # the chunk a pair was drawn from: "file#number"


class GeneratedPair(Protocol):
    """A grounded question/answer pair (``evaluation.generate.engine.GeneratedItem``)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...  # single_hop or multi_hop
    @property
    def lang(self) -> str: ...
    @property
    def question(self) -> str: ...
    @property
    def answer(self) -> str: ...
    @property
    def chunks(self) -> Sequence[_Located]: ...


class Generation(Protocol):
    """What the pair generator reports (``evaluation.generate.engine.GenerationReport``)."""

    @property
    def items(self) -> Sequence[GeneratedPair]: ...
    @property
    def calls(self) -> int: ...


G = TypeVar("G", bound=Generation)


@dataclass(frozen=True)
class SynthConfig:
    """Paraphrasing, dedup and the leakage check; how many pairs to generate is the generator's."""

    paraphrase: int = 0
    seed: int = 0
    batch_size: int = 8
    dedup_threshold: float = DEFAULT_THRESHOLD
    suites: tuple[Path, ...] = ()
    project_suites: bool = True
    temperature: float = 0.8

    def __post_init__(self) -> None:
        if self.paraphrase < 0:
            raise ConfigError(f"--paraphrase must be >= 0, got {self.paraphrase}")
        if not 0 < self.dedup_threshold <= 1:
            raise ConfigError(f"--dedup-threshold must be in (0, 1], got {self.dedup_threshold}")


@dataclass
class SynthReport(Generic[G]):
    generation: G
    paraphrase_rejected: Counter[str] = field(default_factory=Counter)
    paraphrases: int = 0
    paraphrase_calls: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _entities(text: str) -> set[str]:
    """What a paraphrase must keep: numbers, names with capitals or digits (not the first word), quotes."""
    found = set(_NUMBER.findall(text)) | {q.strip() for q in _QUOTED.findall(text)}
    words = _NAME.findall(text)
    first = re.match(r"\s*([A-Za-z]+)", text)
    found |= {w for w in words if len(w) > 1 and not w.isdigit() and not (first and w == first.group(1))}
    return found


def check_paraphrase(
    original: str, reply: str, lang: str, kept: list[str], threshold: float = DEFAULT_THRESHOLD
) -> str:
    """The cleaned paraphrase, or a reason (a key of ``PARAPHRASE_REASONS``) prefixed with ``!``."""
    from finetune.data.dedup import jaccard, normalized, shingles

    line = next((raw for raw in reply.splitlines() if raw.strip()), "")
    text = _LABEL.sub("", line).strip().strip("\"'“”「」")
    if not re.search(r"[^\W_]", text):
        return "!empty"
    if normalized(text) == normalized(original):
        return "!identical"
    if any(normalized(text) == normalized(other) for other in kept):
        return "!duplicate"
    question = as_question(text, lang)
    if question is None:
        return "!not_a_question"
    if language(question) != lang:
        return "!wrong_language"
    casefolded = question.casefold()
    if any(entity.casefold() not in casefolded for entity in _entities(original)):
        return "!lost_entities"
    if len(question) > 3 * len(original) + 20:
        return "!too_long"
    if jaccard(shingles(question), shingles(original)) >= threshold:
        return "!too_similar"
    return question


def _example(item: GeneratedPair, question: str, tags: list[str], source: str) -> Example:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": item.answer}]
    return Example(messages, tags=tags, source=source)


def _paraphrase(
    items: Sequence[GeneratedPair],
    teacher: LLMBackend,
    config: SynthConfig,
    report: SynthReport[Any],
    progress: Progress,
) -> dict[str, list[str]]:
    """item id -> kept paraphrases; each item gets ``paraphrase`` attempts plus one retry per rejection."""
    kept: dict[str, list[str]] = {item.id: [] for item in items}
    tasks = [(item, slot) for item in items for slot in range(config.paraphrase)]
    progress.start(f"paraphrasing {len(items)} questions × {config.paraphrase}", total=len(tasks))
    for attempt in range(2):
        retry: list[tuple[GeneratedPair, int]] = []
        for start in range(0, len(tasks), config.batch_size):
            batch = tasks[start : start + config.batch_size]
            prompts = []
            for item, _ in batch:
                system, user = _PROMPTS[ZH if item.lang == ZH else "en"]
                prompts.append(
                    [Message("system", system), Message("user", user.format(question=item.question))]
                )
            params = GenParams(
                max_new_tokens=120,
                temperature=config.temperature,
                seed=config.seed * 100_003 + report.paraphrase_calls,
            )
            completions = teacher.generate(prompts, params)
            report.paraphrase_calls += len(batch)
            for (item, slot), completion in zip(batch, completions, strict=True):
                result = check_paraphrase(
                    item.question, completion.text, item.lang, kept[item.id], config.dedup_threshold
                )
                if result.startswith("!"):
                    report.paraphrase_rejected[result[1:]] += 1
                    retry.append((item, slot))
                else:
                    kept[item.id].append(result)
                    progress.advance()
        tasks = retry if attempt == 0 else []
    return kept


def synthesize(
    kb: KnowledgeBase,
    teacher: LLMBackend,
    config: SynthConfig,
    progress: Progress | None = None,
    *,
    generate: Callable[[Progress], G],
    suites: SuiteReader,
) -> SynthReport[G]:
    """Generate grounded pairs (``generate``: the caller's configured generator, given the
    progress), paraphrase them, then drop duplicates and leaks into the suites ``suites`` reads."""
    progress = progress or NullProgress()
    questions, _ = load_eval_questions(
        suites, config.suites, config.project_suites
    )  # a bad suite fails early
    generation = generate(progress)
    report = SynthReport(generation)
    if not generation.items:
        raise NothingSynthesized(
            f"the teacher produced no valid pair in {generation.calls} calls; nothing was written",
            hint="see the rejection reasons; try a larger --teacher model",
        )
    paraphrases = (
        _paraphrase(generation.items, teacher, config, report, progress) if config.paraphrase else {}
    )
    examples: list[Example] = []
    for item in generation.items:
        source = f"kb:{kb.name}:" + "+".join(chunk.where for chunk in item.chunks)
        # The group tag ties each paraphrase to its question: when one leaks, all go (here and
        # in a later `ladder finetune prepare` of the file).
        tags = ["synthetic", item.kind, f"lang:{item.lang}", group_tag(item.question)]
        examples.append(_example(item, item.question, tags, source))
        for number, question in enumerate(paraphrases.get(item.id, []), start=1):
            examples.append(
                _example(item, question, [*tags[:1], "paraphrase", *tags[1:]], f"{source}~p{number}")
            )
    report.paraphrases = sum(len(v) for v in paraphrases.values())
    # Leakage before dedup: a question that dedup would drop as a copy still takes its
    # paraphrases with it when it leaks.
    clean, report.leaks = LeakageChecker(questions).split(examples)
    deduped = Deduplicator(config.dedup_threshold).run(clean)
    report.duplicates = deduped.exact + deduped.near
    report.rows = [
        {"instruction": e.prompt, "input": "", "output": e.response, "tags": e.tags, "source": e.source}
        for e in deduped.kept
    ]
    return report


def write_rows(rows: list[dict[str, Any]], out: Path, force: bool = False) -> None:
    """Write the rows as JSONL, atomically; an existing file needs ``force``."""
    if not rows:
        raise NothingSynthesized(
            "no synthetic example survived dedup and the leakage check; nothing was written"
        )
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists", hint="pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, out)


__all__ = [
    "PARAPHRASE_REASONS",
    "GeneratedPair",
    "Generation",
    "NothingSynthesized",
    "SynthConfig",
    "SynthReport",
    "check_paraphrase",
    "synthesize",
    "write_rows",
]

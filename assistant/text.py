"""Text helpers shared by the floors above: the comparable form of a text, its language, and
whether it is phrased as a question.

``normalize`` is what the lexical metrics score on, what deduplication and the leakage check
compare, and what question generation measures overlap in, so that "the same question"
means one thing everywhere. ``language`` and ``as_question`` check generated questions and
their paraphrases.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.knowledge.fusion import cjk_share

ZH, EN = "zh", "en"
# A text is Chinese when at least this share of its words are CJK (see ``cjk_share``).
ZH_SHARE = 0.5
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_QUESTION_WORDS_ZH = (
    *("吗", "呢", "什么", "多少", "几", "哪", "如何", "怎么", "怎样"),
    *("为什么", "为何", "是否", "谁", "多久", "多长"),
)
_QUESTION_START_EN = re.compile(
    r"^(?:what|when|where|who|whom|whose|which|why|how|is|are|was|were|do|does|did|can|could|should|"
    r"will|would|may|must|has|have|had|in what|within how|for how|according to)\b",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """Comparable form: NFKC, casefold, no punctuation/symbols, no English articles."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def language(text: str) -> str:
    """``zh`` for a mostly Chinese text, ``en`` otherwise."""
    return ZH if cjk_share(text) >= ZH_SHARE else EN


def as_question(text: str, lang: str) -> str | None:
    """The question with its question mark, or ``None`` when it is not a question."""
    text = " ".join(text.split()).strip()
    if text.endswith(("?", "？")):
        return text
    body = text.rstrip("。.!！ ")
    if lang == ZH and any(word in body[-6:] or body.startswith(word) for word in _QUESTION_WORDS_ZH):
        return body + "？"
    if lang == EN and _QUESTION_START_EN.match(body):
        return body + "?"
    return None


__all__ = ["EN", "ZH", "ZH_SHARE", "as_question", "language", "normalize"]

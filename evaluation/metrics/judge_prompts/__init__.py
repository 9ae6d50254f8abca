"""Judge prompts in the language of the item.

ragas' judge prompts are English. Given a Chinese item, a small judge reads an English
instruction and English examples and then has to split, compare and paraphrase Chinese
text; it often lists no statements or answers in English. ``LocalizedMetric`` wraps one
built ragas metric: per item it picks ragas' own metric (English items, unchanged) or a
copy of it whose prompts are the Chinese versions in ``zh.py`` (same output models, so the
same JSON schema), by the language of the item's question and answer
(``assistant.text.language``: a CJK share of at least one half).

It also notes, per item, what a reader of the score should know: the prompt language, and
for a metric that embeds (answer relevancy, answer correctness) a Chinese item compared
with an English-only embedding model, whose similarities on Chinese mean little.

ragas loads when a metric is localized, never on import.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.text import ZH, language

# The version of the Chinese prompts in zh.py: change it with them, so the judge cache
# (Judge.cache_identity) does not reuse verdicts given under the old texts.
PROMPTS_VERSION = "zh-1"
# What an English-only embedding model does to a Chinese item's score, for its detail.
ENGLISH_ONLY_EMBEDDER = (
    "the embedding model {model} is English-only, so this Chinese item's embedding similarity "
    "means little; set embedding_model to a multilingual model (or a knowledge base built with one)"
)


@dataclass
class JudgedResult:
    """A ragas score and what the score's detail should say about how it was judged."""

    value: float | None
    detail: dict[str, Any] = field(default_factory=dict)


def item_language(arguments: Mapping[str, Any]) -> str:
    """``zh`` or ``en`` for one item's ``ascore`` arguments: its question with its answer
    (the response, or the reference for the context metrics)."""
    answer = arguments.get("response") or arguments.get("reference") or ""
    return language(f"{arguments.get('user_input', '')} {answer}")


def chinese_copy(ragas_metric: Any) -> Any:
    """A shallow copy of ``ragas_metric`` with each of its ragas prompts in Chinese.

    The copy shares the LLM and embeddings; a prompt without a Chinese version stays as it is.
    """
    from evaluation.metrics.judge_prompts.zh import CHINESE

    localized = copy.copy(ragas_metric)
    for name, value in vars(ragas_metric).items():
        chinese = CHINESE.get(type(value))
        if chinese is not None:
            setattr(localized, name, chinese())
    return localized


def embeds(ragas_metric: Any) -> bool:
    return getattr(ragas_metric, "embeddings", None) is not None


class LocalizedMetric:
    """One ragas metric, asked in the item's language.

    ``english_only_embedder`` names the embedding model when it is English-only (else None);
    ``on_english_only`` is called for each Chinese item such a model embeds (the judge logs
    it once per run). Attributes other than ``ascore`` are the English metric's.
    """

    def __init__(
        self,
        english: Any,
        chinese: Any,
        *,
        english_only_embedder: str | None = None,
        on_english_only: Callable[[], None] | None = None,
    ) -> None:
        self.english = english
        self.chinese = chinese
        self.english_only_embedder = english_only_embedder if embeds(english) else None
        self.on_english_only = on_english_only

    def __getattr__(self, name: str) -> Any:
        return getattr(self.english, name)

    def for_item(self, arguments: Mapping[str, Any]) -> tuple[str, Any]:
        """(language, metric) for one item."""
        lang = item_language(arguments)
        return lang, self.chinese if lang == ZH else self.english

    async def ascore(self, **arguments: Any) -> JudgedResult:
        lang, metric = self.for_item(arguments)
        result = await metric.ascore(**arguments)
        # English items say nothing: their detail stays as it was before prompts were localized.
        detail: dict[str, Any] = (
            {"judge_prompt": "zh"} if lang == ZH and self.chinese is not self.english else {}
        )
        if lang == ZH and self.english_only_embedder:
            detail["warning"] = ENGLISH_ONLY_EMBEDDER.format(model=self.english_only_embedder)
            if self.on_english_only is not None:
                self.on_english_only()
        return JudgedResult(getattr(result, "value", result), detail)


__all__ = [
    "ENGLISH_ONLY_EMBEDDER",
    "PROMPTS_VERSION",
    "JudgedResult",
    "LocalizedMetric",
    "chinese_copy",
    "item_language",
]

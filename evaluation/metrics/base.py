"""The Metric protocol, the metric registry, and per-item scores that may be "n/a".

A metric scores one *sample*: a mapping with ragas field names (``user_input``,
``response``, ``retrieved_contexts``, ``reference``, ``reference_contexts``) plus
``choices`` and ``choice_scores`` (logprob mode) for MCQ and ``reference_context_ids`` /
``retrieved_context_ids`` for retrieval. ``build_sample`` makes one from a suite item and
an answer.

Each metric declares the fields it needs (``requires``, all of them; ``requires_any``, at
least one). A field that is absent or ``None`` gives the score "n/a" with the reason:
never a crash, never a silent 0. Values are in ``bounds`` (all built-ins: 0..1, higher is
better), so a suite threshold can be checked against them.

Metrics are registered (``assistant.registry``) as ``"module:Class"`` strings (or classes) so
naming one imports nothing heavy; a second registration under the same name raises ``KeyError``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from assistant.registry import Registry

if TYPE_CHECKING:
    from assistant.types import Answer
    from evaluation.items import SuiteItem

NA = "n/a"


@dataclass(frozen=True)
class Score:
    """One metric on one item: ``value`` is ``None`` for n/a, and ``reason`` says why."""

    value: float | None
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_na(self) -> bool:
        return self.value is None

    def __str__(self) -> str:
        return f"{NA} ({self.reason})" if self.value is None else f"{self.value:.4g}"


def na(reason: str, **detail: Any) -> Score:
    return Score(None, reason, detail)


@runtime_checkable
class Metric(Protocol):
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    requires_any: ClassVar[tuple[str, ...]]
    kinds: ClassVar[tuple[str, ...]]
    higher_is_better: ClassVar[bool]
    bounds: ClassVar[tuple[float, float] | None]

    @property
    def label(self) -> str: ...

    def score(self, sample: Mapping[str, Any]) -> Score: ...


class BaseMetric:
    """Checks the declared fields, then calls ``compute``. Options come in as keywords."""

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    requires_any: ClassVar[tuple[str, ...]] = ()
    kinds: ClassVar[tuple[str, ...]] = ("qa", "mcq")
    # How answers are obtained: "generate" (free text) and/or "logprob" (MCQ option scores).
    modes: ClassVar[tuple[str, ...]] = ("generate", "logprob")
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(self, **options: Any) -> None:
        if options:
            raise ValueError(f"metric {self.name!r} takes no options, got {', '.join(sorted(options))}")

    @property
    def label(self) -> str:
        """The column name in reports and thresholds (``hit@3`` for ``hit_at_k`` with k=3)."""
        return self.name

    def missing(self, sample: Mapping[str, Any]) -> list[str]:
        absent = [f for f in self.requires if sample.get(f) is None]
        if self.requires_any and all(sample.get(f) is None for f in self.requires_any):
            absent.append(" or ".join(self.requires_any))
        return absent

    def score(self, sample: Mapping[str, Any]) -> Score:
        absent = self.missing(sample)
        if absent:
            return na(f"missing {', '.join(absent)}")
        return self.compute(sample)

    def compute(self, sample: Mapping[str, Any]) -> Score:
        raise NotImplementedError


# ---- registry -----------------------------------------------------------------------------
# Metric classes by name; the "module:Class" targets are imported only when scored.
METRICS: Registry[type[Any]] = Registry("metric")


def register_metric(name: str, target: str | type[Any]) -> None:
    """Register ``"module:Class"`` (or a class) under ``name``; refuse a second ``name``."""
    METRICS.register(name, target)


def metric_names() -> list[str]:
    return METRICS.names()


def metric_class(name: str) -> type[Any]:
    """The class registered as ``name``; an unknown name is a ``ConfigError`` listing the known."""
    return METRICS.get(name)


def build_metric(name: str, **options: Any) -> Metric:
    """An instance; bad options raise ``ValueError``/``TypeError`` (the suite loader adds the line)."""
    metric: Metric = metric_class(name)(**options)
    return metric


register_metric("exact_match", "evaluation.metrics.lexical:ExactMatch")
register_metric("token_f1", "evaluation.metrics.lexical:TokenF1")
register_metric("contains_answer", "evaluation.metrics.lexical:ContainsAnswer")
register_metric("rouge_l", "evaluation.metrics.lexical:RougeL")
register_metric("bleu", "evaluation.metrics.lexical:Bleu")
register_metric("accuracy", "evaluation.metrics.mcq:Accuracy")
register_metric("unparseable", "evaluation.metrics.mcq:Unparseable")
register_metric("hit_at_k", "evaluation.metrics.retrieval:HitAtK")
register_metric("mrr", "evaluation.metrics.retrieval:MRR")
register_metric("faithfulness", "evaluation.metrics.judged:Faithfulness")
register_metric("answer_relevancy", "evaluation.metrics.judged:AnswerRelevancy")
register_metric("context_precision", "evaluation.metrics.judged:ContextPrecision")
register_metric("context_recall", "evaluation.metrics.judged:ContextRecall")
register_metric("answer_correctness", "evaluation.metrics.judged:AnswerCorrectness")


# ---- samples and summaries ----------------------------------------------------------------
def build_sample(
    item: SuiteItem,
    answer: Answer | None = None,
    choice_scores: Sequence[float] | None = None,
    retrieved_context_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The fields metrics read, from a suite item and (when there is one) its answer."""
    question = item.question
    sample: dict[str, Any] = {
        "user_input": question.user_input,
        "reference": question.reference,
        "reference_contexts": question.reference_contexts,
        "reference_context_ids": item.reference_context_ids,
        "choices": question.choices,
        "choice_scores": list(choice_scores) if choice_scores is not None else None,
        "retrieved_context_ids": list(retrieved_context_ids) if retrieved_context_ids is not None else None,
        "response": None,
        "retrieved_contexts": None,
    }
    if answer is not None:
        sample["response"] = answer.response
        sample["retrieved_contexts"] = list(answer.retrieved_contexts)
    return sample


@dataclass
class MetricSummary:
    """The mean over scored items; n/a items are counted, with their reasons, not averaged."""

    label: str
    mean: float | None
    n: int
    n_na: int
    na_reasons: dict[str, int] = field(default_factory=dict)


def summarize(label: str, scores: Sequence[Score]) -> MetricSummary:
    values = [s.value for s in scores if s.value is not None and not math.isnan(s.value)]
    reasons = Counter(s.reason for s in scores if s.value is None or math.isnan(s.value))
    mean = sum(values) / len(values) if values else None
    return MetricSummary(label, mean, len(values), len(scores) - len(values), dict(reasons))

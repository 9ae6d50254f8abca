"""LLM-as-judge metrics: ragas 0.4.3's faithfulness, answer relevancy, context precision,
context recall and answer correctness, scored by a ``Judge`` (any Ladder backend).

Each metric runs ragas' own implementation from ``ragas.metrics.collections`` with ragas'
own (English) prompts; ``Judge`` adapts the backend and the embeddings model. A judged
metric needs a judge, so ``score(sample)`` alone gives n/a; the runner calls
``score_many(samples, judge)``, which judges up to ``judge.concurrency`` items at once and
returns one ``Score`` per sample, in order, from plain sync code.

Two kinds of failure, told apart:

- **A reply that cannot be used** (not JSON, the wrong shape, no statements or verdicts, so
  ragas would give NaN) is n/a for that item, with the reason ``judge parse failure: <cause>``
  and ``detail["judge_failure"] = True``; the other items go on. The runner caches it like any
  judgement: the judge decodes greedily, so asking again gives the same reply.
- **A judge that cannot answer** (unreachable, timed out, a refused key, an unknown model: any
  ``LadderError``) stops ``score_many`` with that error, its exit code and hint kept and its
  message naming the judge and the metric. It says nothing about the item, so it is never a
  score, never cached, and the next run asks again. Any other exception is a bug (ours or
  ragas'), not a verdict on the answer: it is not silenced either.

ragas 0.4.3's collection metrics do not wrap exceptions: ``ascore`` awaits the judge's
``agenerate`` directly, so what the backend raised (``BackendError``, ...) arrives here as is.

Importing this module imports neither ragas nor torch; both load on the first judged item.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, ClassVar

from assistant.errors import LadderError
from evaluation.metrics.base import BaseMetric, Score, na
from evaluation.metrics.judge import Judge, JudgeParseError, run_sync

__all__ = [
    "NO_JUDGE",
    "AnswerCorrectness",
    "AnswerRelevancy",
    "ContextPrecision",
    "ContextRecall",
    "Faithfulness",
    "Judge",
    "JudgedMetric",
]

NO_JUDGE = "no judge: run with --judge MODEL, or --no-judge for deterministic metrics only"
JUDGE_FAILURE = "judge parse failure"
_CAUSE_CHARS = 160


class JudgedMetric(BaseMetric):
    """A ragas metric behind Ladder's ``Metric`` protocol. Subclasses say which ragas
    metric to build (``build``) and which fields it takes (``requires``, in ragas' names)."""

    kinds: ClassVar[tuple[str, ...]] = ("qa",)
    needs_judge: ClassVar[bool] = True

    def missing(self, sample: Mapping[str, Any]) -> list[str]:
        # ragas refuses empty strings and lists with a ValueError; they are missing data
        # (an answer that retrieved nothing has no faithfulness), not a judge failure.
        return [f for f in self.requires if sample.get(f) is None or _is_empty(sample[f])]

    def score(self, sample: Mapping[str, Any]) -> Score:
        absent = self.missing(sample)
        if absent:
            return na(f"missing {', '.join(absent)}")
        return na(NO_JUDGE)

    def score_many(self, samples: Sequence[Mapping[str, Any]], judge: Judge) -> list[Score]:
        """One score per sample, in order. Items with missing fields cost no judge call."""
        scores: list[Score | None] = []
        todo: list[tuple[int, dict[str, Any]]] = []
        for index, sample in enumerate(samples):
            absent = self.missing(sample)
            if absent:
                scores.append(na(f"missing {', '.join(absent)}"))
            else:
                scores.append(None)
                todo.append((index, self.arguments(sample)))
        if todo:
            # Built outside the per-item guard: a judge without an embeddings model is the
            # user's setup to fix, raised once, not a failure counted on every item.
            ragas_metric = judge.prepare_metric(self.build(judge))
            try:
                judged = run_sync(_judge_all(ragas_metric, [args for _, args in todo], judge))
            except LadderError as exc:
                name_the_judge(exc, judge.model_id, self.name)
                raise
            for (index, _), score in zip(todo, judged, strict=True):
                scores[index] = score
        return [s for s in scores if s is not None]

    def arguments(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the ragas metric's ``ascore``."""
        return {
            f: [str(c) for c in sample[f]] if f == "retrieved_contexts" else str(sample[f])
            for f in self.requires
        }

    def build(self, judge: Judge) -> Any:
        raise NotImplementedError


def _is_empty(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (list, tuple)) and not value


async def _judge_all(ragas_metric: Any, arguments: list[dict[str, Any]], judge: Judge) -> list[Score]:
    semaphore = asyncio.Semaphore(judge.concurrency)

    async def one(kwargs: dict[str, Any]) -> Score:
        async with semaphore:
            return await _judge_one(ragas_metric, kwargs, judge)

    return list(await asyncio.gather(*(one(kwargs) for kwargs in arguments)))


async def _judge_one(ragas_metric: Any, arguments: dict[str, Any], judge: Judge) -> Score:
    try:
        result = await ragas_metric.ascore(**arguments)
    except JudgeParseError as exc:  # this item's reply is unusable; the next item may be fine
        return judge_failure(_cause(exc))
    # A LadderError (the judge cannot answer) or any other exception propagates: see the
    # module docstring.
    value = getattr(result, "value", result)
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        # ragas gives NaN where the judge listed no statements or verdicts.
        return judge_failure(f"no verdicts in the reply (ragas returned {value!r})")
    detail: dict[str, Any] = {"judge": judge.model_id}
    # The prompts' language and an English-only embedder's warning (judge_prompts.LocalizedMetric).
    detail.update(getattr(result, "detail", None) or {})
    clamped = min(1.0, max(0.0, float(value)))
    if clamped != value:
        # Cosine similarity can dip below 0 (answer relevancy) or pass 1 by a rounding ulp.
        detail["raw_value"] = float(value)
    return Score(clamped, detail=detail)


def judge_failure(cause: str) -> Score:
    return Score(None, f"{JUDGE_FAILURE}: {cause}", {"judge_failure": True})


def _cause(exc: JudgeParseError) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return text if len(text) <= _CAUSE_CHARS else text[: _CAUSE_CHARS - 3] + "..."


def name_the_judge(exc: LadderError, judge_id: str, metric: str) -> None:
    """Say in ``exc``'s message that the judge failed, and on which metric (the backend's own
    message names only its URL or model); the class, exit code and hint stay."""
    prefix = f"the judge {judge_id!r} failed on {metric}: "
    if not exc.message.startswith(prefix):
        exc.message = prefix + exc.message
        exc.args = (exc.message,)


# ---- the metrics --------------------------------------------------------------------------
class Faithfulness(JudgedMetric):
    """Share of the response's statements that the retrieved contexts support."""

    name: ClassVar[str] = "faithfulness"
    requires: ClassVar[tuple[str, ...]] = ("user_input", "response", "retrieved_contexts")

    def build(self, judge: Judge) -> Any:
        from ragas.metrics.collections import Faithfulness as RagasFaithfulness

        return RagasFaithfulness(llm=judge.ragas_llm())


class AnswerRelevancy(JudgedMetric):
    """Cosine similarity of the question to one the judge reconstructs from the response;
    0 when the judge finds the response noncommittal."""

    name: ClassVar[str] = "answer_relevancy"
    requires: ClassVar[tuple[str, ...]] = ("user_input", "response")

    def build(self, judge: Judge) -> Any:
        from ragas.metrics.collections import AnswerRelevancy as RagasAnswerRelevancy

        # ragas asks the same prompt `strictness` times and averages; under greedy
        # decoding the replies are identical, so more than one only costs judge calls.
        return RagasAnswerRelevancy(llm=judge.ragas_llm(), embeddings=judge.ragas_embeddings(), strictness=1)


class ContextPrecision(JudgedMetric):
    """Average precision of the retrieved contexts, each judged useful for reaching the
    reference answer or not (ragas' ``ContextPrecisionWithReference``)."""

    name: ClassVar[str] = "context_precision"
    requires: ClassVar[tuple[str, ...]] = ("user_input", "retrieved_contexts", "reference")

    def build(self, judge: Judge) -> Any:
        from ragas.metrics.collections import ContextPrecisionWithReference

        return ContextPrecisionWithReference(llm=judge.ragas_llm(), name="context_precision")


class ContextRecall(JudgedMetric):
    """Share of the reference's statements that the retrieved contexts account for."""

    name: ClassVar[str] = "context_recall"
    requires: ClassVar[tuple[str, ...]] = ("user_input", "retrieved_contexts", "reference")

    def build(self, judge: Judge) -> Any:
        from ragas.metrics.collections import ContextRecall as RagasContextRecall

        return RagasContextRecall(llm=judge.ragas_llm())


class AnswerCorrectness(JudgedMetric):
    """0.75 x F1 of response vs reference statements (TP/FP/FN by the judge) plus 0.25 x
    embedding similarity of the two, as ragas weighs them."""

    name: ClassVar[str] = "answer_correctness"
    requires: ClassVar[tuple[str, ...]] = ("user_input", "response", "reference")

    def build(self, judge: Judge) -> Any:
        return _strict_answer_correctness()(llm=judge.ragas_llm(), embeddings=judge.ragas_embeddings())


@cache
def _strict_answer_correctness() -> type:
    """ragas' AnswerCorrectness, except that no statements from a non-empty text is a
    judge failure: ragas would call it a perfect factual match (F1 = 1)."""
    from ragas.metrics.collections import AnswerCorrectness as RagasAnswerCorrectness

    class StrictAnswerCorrectness(RagasAnswerCorrectness):
        async def _generate_statements(self, question: str, text: str) -> list[str]:
            statements: list[str] = await super()._generate_statements(question, text)
            if not statements:
                raise JudgeParseError(f"no statements for a non-empty text: {text[:60]!r}")
            return statements

    return StrictAnswerCorrectness

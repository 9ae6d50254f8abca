"""The runner's judging step: judged metrics on a batch of records, through the judge cache,
with the judge's usage counted apart from the answering model's.

- **Cache.** A judged score is cached under (answer key, reference, reference contexts),
  judge (``judge_cache_id``) and metric, and read back unless the run asked for no cache
  (``--no-cache`` judges again). A "judge parse failure" (a reply that could not be used) is
  cached like a score: the judge decodes greedily, so asking again gives the same reply;
  ``--no-cache``, or a judge with another cache identity (new prompts), asks again.
- **A judge that cannot answer** raises (a ``LadderError`` from ``score_many``, naming the
  judge): the metric's scores for this batch are not written, so nothing is cached for the
  failed calls and the next run asks again. The hint says how to resume.
- **Usage.** ``Judge.usage`` is read before and after each ``score_many``: the difference is
  added to the run's ``JudgeTally`` and shared equally among the records the judge was asked
  about (items with a field missing cost no call), with the call's wall time, the way an
  answer's ``compute_s`` is its batch's wall time over the items it held.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.errors import LadderError
from evaluation.plan import stable_hash
from evaluation.records import sample_of
from evaluation.results import ItemRecord, ItemScore

if TYPE_CHECKING:
    from evaluation.items import SuiteItem
    from evaluation.metrics.base import Metric
    from evaluation.store import RunStore

RESUME_HINT = (
    "nothing was scored for the failed calls and the answers so far are kept: "
    "the same command resumes the run and asks the judge again"
)


@dataclass
class JudgeTally:
    """Judge calls and tokens: ``Judge.usage`` read at one moment, or summed over a run."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: int = 0  # judgements served from the cache, costing nothing

    @classmethod
    def of(cls, judge: Any) -> JudgeTally:
        """What ``judge`` has spent so far; zero for a judge that does not count."""
        usage = getattr(judge, "usage", None)
        return cls(
            int(getattr(usage, "calls", 0)),
            int(getattr(usage, "prompt_tokens", 0)),
            int(getattr(usage, "completion_tokens", 0)),
        )

    def minus(self, earlier: JudgeTally) -> JudgeTally:
        return JudgeTally(
            self.calls - earlier.calls,
            self.prompt_tokens - earlier.prompt_tokens,
            self.completion_tokens - earlier.completion_tokens,
        )

    def add(self, other: JudgeTally) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def share(self, records: Sequence[ItemRecord], wall_s: float) -> None:
        """Give each record an equal share of these calls and tokens, and of ``wall_s``."""
        for record in records:
            record.judge_calls += self.calls / len(records)
            record.judge_prompt_tokens += self.prompt_tokens / len(records)
            record.judge_completion_tokens += self.completion_tokens / len(records)
            record.judge_compute_s += wall_s / len(records)


def judge_cache_id(judge: Any, judge_name: str = "") -> str:
    """The judge as the judge cache knows it: ``judge.cache_identity()`` where the judge has
    one (its model and whatever else changes its verdicts: prompts, constrained decoding, the
    embedding model), else its model id, else the name the run was given."""
    identity = getattr(judge, "cache_identity", None)
    if callable(identity):
        return str(identity())
    return str(getattr(judge, "model_id", judge_name))


def judge_records(
    store: RunStore,
    records: list[ItemRecord],
    batch: Sequence[tuple[int, SuiteItem, str]],
    judged: Sequence[Metric],
    judge: Any,
    judge_name: str,
    use_cache: bool,
    tally: JudgeTally,
) -> None:
    """Score ``records`` (one per ``batch`` entry: seq, item, answer key) on the judged metrics."""
    judge_id = judge_cache_id(judge, judge_name)
    keys = [
        stable_hash([key, item.question.reference, item.question.reference_contexts])
        for _, item, key in batch
    ]
    for metric in judged:
        known = store.cached_judgements(keys, judge_id, metric.label) if use_cache else {}
        tally.cached += len(known)
        todo = [i for i, key in enumerate(keys) if key not in known]
        if todo:
            samples = [sample_of(records[i], batch[i][1]) for i in todo]
            before, started = JudgeTally.of(judge), time.perf_counter()
            try:
                scores = metric.score_many(samples, judge)  # type: ignore[attr-defined]
            except LadderError as exc:
                exc.hint = f"{exc.hint}; {RESUME_HINT}" if exc.hint else RESUME_HINT
                raise
            spent = JudgeTally.of(judge).minus(before)
            tally.add(spent)
            missing = getattr(metric, "missing", None)
            asked = [i for i, sample in zip(todo, samples, strict=True) if not (missing and missing(sample))]
            spent.share([records[i] for i in asked or todo], time.perf_counter() - started)
            fresh = {
                keys[i]: ItemScore(s.value, s.reason, dict(s.detail))
                for i, s in zip(todo, scores, strict=True)
            }
            with store.transaction():
                store.put_judgements(fresh, judge_id, metric.label)
            known.update(fresh)
        for record, key in zip(records, keys, strict=True):
            record.scores[metric.label] = known[key]

"""The evaluation runner: strategies x suite -> records in the run store.

For every strategy and every item it asks the strategy (the same ``assistant.service`` path
that ``ladder ask``, the UI and the server use), scores the answer with the suite's metrics
and writes one ``ItemRecord``. Then it summarises: means with bootstrap CIs, thresholds,
subject/category breakdowns, paired comparisons between strategies, cost.

- **Cache.** An answer is stored under the hash of (strategy config, model identity, item,
  MCQ mode, the settings that change outputs, the knowledge base's contents for RAG). A
  re-run of an unchanged suite makes zero model calls; changing any of those makes new ones.
  Judged scores are cached under (answer key, reference, judge, metric); ``--no-cache``
  (``use_cache=False``) judges again too.
- **A judge that fails.** An unusable reply is n/a for its item ("judge parse failure") and
  cached like any judgement: greedy decoding would give the same reply again. A judge that
  cannot answer (unreachable, timed out, a refused key: a ``LadderError``) stops the run with
  that error; the batch's answers are cached before it is judged and judgements are written
  only once made, so nothing is cached for the failed calls and the next run resumes, asking
  the judge again.
- **Judge usage.** The judge's calls, tokens and wall time are counted apart from the
  answering model's: per run (``RunResult.judge_calls`` ...) and per item, each item taking
  its share of the judge calls over its batch, like ``compute_s``.
- **Resume.** Items are processed in batches; each batch's fresh answers are cached as soon
  as they are made (before judging), and its records are written in one transaction. A run
  that dies (``kill -9``, a crash, Ctrl-C, a judge that fails) stays unfinished; the next
  ``ladder eval`` with the same suite, strategies, model and judge takes it over and does
  only the items it lacks. The records' primary key forbids duplicates.
- **MCQ modes.** ``logprob`` scores the suite's rendered prompt with one batched forward
  pass (``score_choices``); it is what the ``prompt`` strategy means for an exam.
  ``generate`` lets any strategy answer in free text and extracts the letter.
- **Determinism.** Strategies decode greedily unless their config says otherwise; the
  bootstrap is seeded.
- **Compute and latency.** Each item's ``compute_s`` is its batch's wall time divided by the
  items the batch held (what the price is charged on). A batched backend reports the whole
  batch's wall time as every answer's latency, which is no one's latency, so after a lane's
  batched run the runner answers ``latency_sample`` of its items again one at a time and keeps
  their wall times as the single-request latency (p50/p95; the decision's latency limit reads
  the p95). They are cached under their own keys like any answer, so a re-run from the cache
  makes no call and keeps the measured times; their calls are counted apart from the run's
  (``latency_calls``). When each batch held one item, every item's wall time already is a
  single request's, and a backend that answers and times every request on its own
  (``batches_together = False``, the fake) reports it per answer: then no sample is taken.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.progress import NullProgress, Progress
from assistant.settings import Settings
from evaluation.aggregate import compare, summarize_strategy, threshold_failures
from evaluation.calibration.store import judge_agreement
from evaluation.items import SuiteItem
from evaluation.judging import JudgeTally, judge_records
from evaluation.metrics.base import Metric
from evaluation.metrics.cost import (
    LATENCY_EVERY_ITEM,
    LATENCY_PER_ANSWER,
    LATENCY_SAMPLE,
    load_price_table,
)
from evaluation.plan import (
    MODES,
    EvalPlan,
    Lane,
    answer_key,
    build_lanes,
    merge_thresholds,
    model_identity,
    pick_mode,
    question_for,
    select_items,
    split_metrics,
    stable_hash,
)
from evaluation.records import answer_entry, make_record
from evaluation.results import COMPLETE, FAILED, RunResult, StrategyResult
from evaluation.store import RunStore, new_run_id, now
from evaluation.suites.readers import LETTERS
from evaluation.suites.spec import load_suite, review_note

LOGPROB_CALL_BATCHES = 8

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend


class Runner:
    """``Runner(settings).run(plan)``; ``backend``/``judge`` are injected by tests and the UI."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore | None = None,
        progress: Progress | None = None,
        backend: LLMBackend | None = None,
        judge: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store or RunStore(settings.db_path)
        self.progress = progress or NullProgress()
        self.backend = backend
        self.judge = judge
        self.model_calls = 0
        self.latency_calls = 0  # calls made only to measure single-request latency
        self.judge_usage = JudgeTally()
        self.chat_template = True

    # ---- running -----------------------------------------------------------------------------
    def run(self, plan: EvalPlan) -> RunResult:
        """Load, plan, answer, score, summarise. User errors raise before a run row exists."""
        if plan.latency_sample is not None and plan.latency_sample < 0:
            raise ConfigError(f"latency_sample must be >= 0, got {plan.latency_sample}")
        suite = load_suite(plan.suite)
        items = select_items(suite.items, plan.items)
        items = items[: plan.limit] if plan.limit else items
        thresholds = merge_thresholds(suite, plan.fail_under)
        lanes = build_lanes(plan, self.settings, self.backend)
        mode = pick_mode(suite, lanes, plan.mode)
        # Metrics that cannot apply in this mode (the unparseable rate in logprob mode) are left out.
        in_mode = [m for m in suite.metrics if mode in getattr(m, "modes", MODES)]
        metrics, judged = split_metrics(in_mode, plan)
        judge_ref = None
        if judged and not plan.no_judge:
            judge_ref = plan.judge or plan.model or self.settings.model
        self.chat_template = bool(suite.spec.chat_template)
        # Raw and templated logprob scores differ, so they are cached apart.
        key_mode = "logprob-raw" if mode == "logprob" and not self.chat_template else mode
        keys = {lane.label: [answer_key(lane, item, key_mode) for item in items] for lane in lanes}
        run_key = stable_hash(
            [
                str(Path(plan.suite).resolve()),
                plan.limit,
                sorted(plan.items) if plan.items is not None else None,
                mode,
                judge_ref,
                thresholds,
                {label: k for label, k in keys.items()},
            ]
        )
        run = RunResult(
            run_id=new_run_id(),
            suite=suite.spec.name,
            suite_path=str(Path(plan.suite).resolve()),
            kind=suite.spec.kind,
            status="running",
            created=now(),
            model=plan.model or self.settings.model,
            judge=judge_ref,
            mode=mode,
            thresholds=thresholds,
            strategies=[
                StrategyResult(lane.label, lane.config, lane.config_hash, lane.strategy.backend.model_id)
                for lane in lanes
            ],
            judge_agreement=judge_agreement(self.settings, judge_ref, [m.label for m in judged]),
            suite_review=review_note(suite.spec),
        )
        resumed = self.store.resumable_run(run_key) if plan.resume else None
        if resumed:
            run.run_id = resumed
            self.store.claim_run(resumed)
            self.progress.note(f"resuming run {resumed}")
        else:
            self.store.create_run(run, run_key)
        started = time.perf_counter()
        self.judge_usage = JudgeTally()
        try:
            judge = self._judge(judge_ref, lanes_kb(lanes)) if judge_ref else None
            latency: dict[str, tuple[list[float], str]] = {}
            for lane in lanes:
                self._run_lane(run.run_id, lane, items, keys[lane.label], mode, metrics, judged, judge, plan)
                pairs = list(zip(items, keys[lane.label], strict=True))
                latency[lane.label] = self._single_request_latency(run.run_id, lane, pairs, mode, plan)
        except BaseException as exc:
            self.store.fail_run(run.run_id, f"{type(exc).__name__}: {exc}")
            raise
        run.records = self.store.records(run.run_id)
        prices = load_price_table(self.settings.price_table)
        all_metrics = [*metrics, *(judged if judge_ref else [])]
        for lane, result in zip(lanes, run.strategies, strict=True):
            summarize_strategy(
                result,
                run.records_for(lane.label),
                all_metrics,
                thresholds,
                lane.model_ref,
                prices,
                latency[lane.label],
                judge=judge_ref,
            )
        first = lanes[0].label
        for lane in lanes[1:]:
            run.comparisons += compare(
                lane.label,
                first,
                run.records_for(lane.label),
                run.records_for(first),
                [m.label for m in all_metrics],
            )
        run.status, run.finished = COMPLETE, now()
        run.failures = threshold_failures(run)
        run.wall_s = time.perf_counter() - started
        run.model_calls = self.model_calls
        run.latency_calls = self.latency_calls
        run.judge_calls = self.judge_usage.calls
        run.judge_prompt_tokens = self.judge_usage.prompt_tokens
        run.judge_completion_tokens = self.judge_usage.completion_tokens
        run.judge_cached = self.judge_usage.cached
        self.store.finish_run(run)
        return run

    def _judge(self, judge_ref: str, kb: str | None = None) -> Any:
        """The judge; its metrics that embed use ``kb``'s embedding model (else the settings')."""
        if self.judge is not None:
            return self.judge
        from evaluation.metrics.judged import Judge

        return Judge.from_settings(judge_ref, self.settings, kb=kb)

    def _run_lane(
        self,
        run_id: str,
        lane: Lane,
        items: Sequence[SuiteItem],
        keys: Sequence[str],
        mode: str,
        metrics: Sequence[Metric],
        judged: Sequence[Metric],
        judge: Any,
        plan: EvalPlan,
    ) -> None:
        done = self.store.done_items(run_id, lane.label)
        todo = [
            (seq, item, key)
            for seq, (item, key) in enumerate(zip(items, keys, strict=True))
            if item.question.id not in done
        ]
        self.progress.start(f"{lane.label}: {len(items)} items", total=len(items))
        if done:
            self.progress.advance(len(items) - len(todo))
        # Logprob scoring hands the backend several micro-batches at once, so prompts that share
        # a long prefix (an exam subject's k-shot exemplars) reuse its KV cache across them.
        size = self._batch_items(mode)
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            cached = self.store.cached_answers(k for _, _, k in batch) if plan.use_cache else {}
            missing = [(item, key) for _, item, key in batch if key not in cached]
            fresh = self._answer(lane, missing, mode) if missing else {}
            if fresh:
                # Cached before judging: a judge that fails stops the run, and the next run
                # resumes from these answers instead of asking the model again.
                with self.store.transaction():
                    self.store.put_answers(fresh)
            records = []
            for _seq, item, key in batch:
                entry = cached.get(key) or fresh[key]
                records.append(make_record(lane, item, key, entry, cached=key in cached, metrics=metrics))
            if judge is not None:
                judge_records(
                    self.store,
                    records,
                    batch,
                    judged,
                    judge,
                    plan.judge or "",
                    plan.use_cache,
                    self.judge_usage,
                )
            with self.store.transaction():
                self.store.add_records(run_id, records, [seq for seq, _, _ in batch])
            self.progress.advance(len(batch))

    def _batch_items(self, mode: str) -> int:
        """How many items one batch holds (one call to the strategy or ``score_choices``)."""
        return max(1, self.settings.batch_size) * (LOGPROB_CALL_BATCHES if mode == "logprob" else 1)

    def _single_request_latency(
        self, run_id: str, lane: Lane, pairs: Sequence[tuple[SuiteItem, str]], mode: str, plan: EvalPlan
    ) -> tuple[list[float], str]:
        """Wall times of single requests, and how they were measured.

        A backend that answers and times each request on its own (``batches_together``
        False, the fake): its per-answer latencies. Batches of one, all answered in this run:
        every item's wall time. Otherwise (a cached answer may come from a batched run)
        ``latency_sample`` items spread over the suite, answered again one at a time and cached
        under their own keys; their calls are counted apart (``RunResult.latency_calls``).
        """
        records = [r for r in self.store.records(run_id) if r.strategy == lane.label]
        if not getattr(lane.strategy.backend, "batches_together", True):
            return [r.latency_s for r in records], LATENCY_PER_ANSWER
        if self._batch_items(mode) == 1 and records and not any(r.cached for r in records):
            return [r.compute_s for r in records], LATENCY_EVERY_ITEM
        wanted = self.settings.latency_sample if plan.latency_sample is None else plan.latency_sample
        count = min(wanted, len(pairs))
        picked = sorted({i * len(pairs) // count for i in range(count)}) if count else []
        times: list[float] = []
        if picked:
            self.progress.start(f"{lane.label}: single-request latency", total=len(picked))
        for index in picked:
            item, item_key = pairs[index]
            key = stable_hash([item_key, "single request"])
            entry = self.store.cached_answers([key]).get(key) if plan.use_cache else None
            if entry is None:
                calls = self.model_calls
                fresh = self._answer(lane, [(item, key)], mode)
                self.latency_calls += self.model_calls - calls
                self.model_calls = calls
                with self.store.transaction():
                    self.store.put_answers(fresh)
                entry = fresh[key]
            times.append(float(entry["compute_s"]))
            self.progress.advance(1)
        return times, LATENCY_SAMPLE

    def _answer(
        self, lane: Lane, todo: Sequence[tuple[SuiteItem, str]], mode: str
    ) -> dict[str, dict[str, Any]]:
        """Fresh answers for the cache misses, as cache entries."""
        started = time.perf_counter()
        out: dict[str, dict[str, Any]] = {}
        if mode == "logprob":
            by_count: dict[int, list[tuple[SuiteItem, str]]] = {}
            for item, key in todo:
                by_count.setdefault(len(item.question.choices or []), []).append((item, key))
            for count, group in by_count.items():
                scores = lane.strategy.backend.score_choices(
                    [i.prompt for i, _ in group], list(LETTERS[:count]), chat_template=self.chat_template
                )
                self.model_calls += len(group)
                for (item, key), row in zip(group, scores, strict=True):
                    out[key] = {
                        "response": None,
                        "choice_scores": list(row),
                        "model_calls": 1,
                        "model_id": lane.strategy.backend.model_id,
                        "prompt": item.prompt,
                    }
        else:
            questions = [question_for(item) for item, _ in todo]
            answers = lane.strategy.answer(questions)
            for (item, key), answer in zip(todo, answers, strict=True):
                self.model_calls += answer.usage.model_calls
                out[key] = answer_entry(answer, item)
        compute_s = (time.perf_counter() - started) / max(1, len(todo))
        for entry in out.values():
            entry["compute_s"] = compute_s
            entry.setdefault("latency_s", compute_s)
        return out


__all__ = ["COMPLETE", "FAILED", "EvalPlan", "Runner", "model_identity"]


def lanes_kb(lanes: Sequence[Any]) -> str | None:
    """The knowledge base whose embedder the judge's embedding metrics use: the first lane's that
    names one (a RAG or agent run), else None."""
    return next((str(lane.config["kb"]) for lane in lanes if lane.config.get("kb")), None)

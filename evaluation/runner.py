"""The evaluation runner: strategies x suite -> records in the run store.

For every strategy and every item it asks the strategy (the same ``assistant.service`` path
that ``ladder ask``, the UI and the server use), scores the answer with the suite's metrics
and writes one ``ItemRecord``. Then it summarises: means with bootstrap CIs, thresholds,
subject/category breakdowns, paired comparisons between strategies, cost.

- **Cache.** An answer is stored under the hash of (strategy config, model identity, item,
  MCQ mode, the settings that change outputs, the knowledge base's contents for RAG). A
  re-run of an unchanged suite makes zero model calls; changing any of those makes new ones.
  Judged scores are cached under (answer key, reference, judge, metric).
- **Resume.** Items are processed in batches; each batch's answers and records are written
  in one transaction. A run that dies (``kill -9``, a crash, Ctrl-C) stays unfinished; the
  next ``ladder eval`` with the same suite, strategies, model and judge takes it over and
  does only the items it lacks. The records' primary key forbids duplicates.
- **MCQ modes.** ``logprob`` scores the suite's rendered prompt with one batched forward
  pass (``score_choices``); it is what the ``prompt`` strategy means for an exam.
  ``generate`` lets any strategy answer in free text and extracts the letter.
- **Determinism.** Strategies decode greedily unless their config says otherwise; the
  bootstrap is seeded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.models.progress import NullProgress, Progress
from assistant.settings import Settings
from assistant.types import Answer, Question
from evaluation.aggregate import compare, summarize_strategy, threshold_failures
from evaluation.loaders import LETTERS, SuiteItem
from evaluation.metrics.base import Metric, build_sample
from evaluation.metrics.cost import load_price_table
from evaluation.results import COMPLETE, FAILED, ItemRecord, ItemScore, RunResult, StrategyResult
from evaluation.store import RunStore, new_run_id, now
from evaluation.suites import Suite, load_suite

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.service import StrategySpec
    from assistant.strategies.base import BaseStrategy

CACHE_VERSION = 1
MODES = ("logprob", "generate")


@dataclass
class EvalPlan:
    """What to evaluate; the CLI, the UI and the decision engine fill one of these."""

    suite: str | Path
    strategies: Sequence[StrategySpec] = ("prompt",)
    model: str | None = None  # None: each strategy's `model`, else the `model` setting
    judge: str | None = None  # judged metrics' model; None: the evaluated model
    no_judge: bool = False  # drop judged metrics: deterministic metrics only
    mode: str | None = None  # MCQ: logprob | generate; None: logprob when every strategy is `prompt`
    fail_under: Mapping[str, float] = field(default_factory=dict)  # overrides the suite's thresholds
    use_cache: bool = True
    resume: bool = True
    kb: str | None = None  # knowledge base for strategies that take one (rag, agent)
    limit: int | None = None  # only the first N items (a quick check)


@dataclass
class Lane:
    """One strategy within a run."""

    label: str
    strategy: BaseStrategy
    config: dict[str, Any]
    config_hash: str
    model_key: str
    model_ref: str


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def model_identity(model: str, settings: Settings) -> str:
    """What makes a model's outputs what they are: the reference plus its files' fingerprints,
    so a re-converted pack, retrained adapter or edited fake script misses the cache."""
    from assistant.models.refs import parse_model_ref

    ref = parse_model_ref(model, settings)
    parts: list[Any] = [ref.text, settings.dtype, settings.device, settings.context_overflow]
    folders = []
    if ref.kind == "pack":
        folders.append(settings.models_dir / ref.target)
    elif ref.kind == "folder":
        folders.append(Path(ref.target))
    elif ref.kind == "fake" and ref.target:
        parts.append(hashlib.sha256(Path(ref.target).read_bytes()).hexdigest())
    if ref.adapter is not None:
        folders.append(ref.adapter)
    for folder in folders:
        pack = folder / "pack.json"
        if pack.is_file():
            parts.append(pack.read_text(encoding="utf-8"))
        elif folder.is_dir():
            parts.append(
                sorted(
                    (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()
                )
            )
    return _hash(parts)[:24]


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

    # ---- planning ----------------------------------------------------------------------------
    def lanes(self, plan: EvalPlan) -> list[Lane]:
        from assistant.knowledge.kb import KnowledgeBase
        from assistant.service import build_strategy, strategy_data
        from assistant.strategies.base import strategy_class

        if not plan.strategies:
            raise ConfigError("no strategy to evaluate", hint="pass --strategy NAME (or a YAML config)")
        lanes: list[Lane] = []
        for spec in plan.strategies:
            data, _origin = strategy_data(spec)
            cls = strategy_class(str(data.get("strategy", "prompt")))
            if plan.model:
                data["model"] = plan.model
            if plan.kb and "kb" in {f for f in cls.Config.__dataclass_fields__}:
                data["kb"] = plan.kb
            strategy = build_strategy(data, self.settings, backend=self.backend)
            config = strategy.config.to_dict()
            model_ref = config.get("model") or self.settings.model
            label = Path(str(spec)).stem if str(spec).endswith((".yaml", ".yml", ".json")) else cls.name
            base, n = label, 2
            while any(lane.label == label for lane in lanes):
                label, n = f"{base}-{n}", n + 1
            kb = config.get("kb")
            identity = {
                "model": "injected:" + strategy.backend.model_id
                if self.backend
                else model_identity(model_ref, self.settings),
                "kb": KnowledgeBase.fingerprint(kb, self.settings) if kb else None,
            }
            lanes.append(Lane(label, strategy, config, _hash(config)[:16], _hash(identity)[:24], model_ref))
        return lanes

    @staticmethod
    def pick_mode(suite: Suite, lanes: Sequence[Lane], requested: str | None) -> str:
        if suite.spec.kind != "mcq":
            if requested == "logprob":
                raise ConfigError("logprob mode is for multiple-choice suites", hint="drop --mode")
            return "generate"
        if requested is not None and requested not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {requested!r}")
        only_prompt = all(lane.strategy.name == "prompt" for lane in lanes)
        mode = requested or ("logprob" if only_prompt else "generate")
        if mode == "logprob" and not only_prompt:
            others = ", ".join(lane.label for lane in lanes if lane.strategy.name != "prompt")
            raise ConfigError(
                f"logprob mode scores the suite's prompt directly, so it fits the prompt strategy only "
                f"(not {others})",
                hint="use --mode generate to let every strategy answer in free text",
            )
        return mode

    @staticmethod
    def thresholds(suite: Suite, fail_under: Mapping[str, float]) -> dict[str, float]:
        labels = {m.label: m for m in suite.metrics}
        merged = dict(suite.spec.thresholds)
        for label, value in fail_under.items():
            if label not in labels:
                raise ConfigError(
                    f"--fail-under names {label!r}, which is not among the suite's metrics",
                    hint=f"metrics: {', '.join(labels)}",
                )
            bounds = labels[label].bounds
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise ConfigError(f"--fail-under {label}={value} is outside {bounds[0]:g}..{bounds[1]:g}")
            merged[label] = value
        return merged

    # ---- running -----------------------------------------------------------------------------
    def run(self, plan: EvalPlan) -> RunResult:
        """Load, plan, answer, score, summarise. User errors raise before a run row exists."""
        suite = load_suite(plan.suite)
        items = suite.items[: plan.limit] if plan.limit else suite.items
        thresholds = self.thresholds(suite, plan.fail_under)
        lanes = self.lanes(plan)
        mode = self.pick_mode(suite, lanes, plan.mode)
        # Metrics that cannot apply in this mode (the unparseable rate in logprob mode) are left out.
        in_mode = [m for m in suite.metrics if mode in getattr(m, "modes", MODES)]
        metrics, judged = self._split_metrics(in_mode, plan)
        judge_ref = None
        if judged and not plan.no_judge:
            judge_ref = plan.judge or plan.model or self.settings.model
        keys = {lane.label: [self._answer_key(lane, item, mode) for item in items] for lane in lanes}
        run_key = _hash(
            [
                str(Path(plan.suite).resolve()),
                plan.limit,
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
        )
        resumed = self.store.resumable_run(run_key) if plan.resume else None
        if resumed:
            run.run_id = resumed
            self.store.claim_run(resumed)
            self.progress.note(f"resuming run {resumed}")
        else:
            self.store.create_run(run, run_key)
        started = time.perf_counter()
        try:
            judge = self._judge(judge_ref) if judge_ref else None
            for lane in lanes:
                self._run_lane(run.run_id, lane, items, keys[lane.label], mode, metrics, judged, judge, plan)
        except BaseException as exc:
            self.store.fail_run(run.run_id, f"{type(exc).__name__}: {exc}")
            raise
        run.records = self.store.records(run.run_id)
        prices = load_price_table(self.settings.price_table)
        all_metrics = [*metrics, *(judged if judge_ref else [])]
        for lane, result in zip(lanes, run.strategies, strict=True):
            summarize_strategy(
                result, run.records_for(lane.label), all_metrics, thresholds, lane.model_ref, prices
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
        self.store.finish_run(run)
        return run

    @staticmethod
    def _split_metrics(metrics: Sequence[Metric], plan: EvalPlan) -> tuple[list[Metric], list[Metric]]:
        plain = [m for m in metrics if not getattr(m, "needs_judge", False)]
        judged = [m for m in metrics if getattr(m, "needs_judge", False)]
        if plan.no_judge and not plain:
            raise ConfigError("--no-judge leaves no metric: every metric of this suite needs a judge")
        return plain, judged

    def _judge(self, judge_ref: str) -> Any:
        if self.judge is not None:
            return self.judge
        from evaluation.metrics.judged import Judge

        return Judge.from_settings(judge_ref, self.settings)

    def _answer_key(self, lane: Lane, item: SuiteItem, mode: str) -> str:
        question = item.question
        return _hash(
            {
                "v": CACHE_VERSION,
                "config": lane.config,
                "model": lane.model_key,
                "mode": mode,
                "item": [item.prompt, question.user_input, question.choices],
            }
        )

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
        size = max(1, self.settings.batch_size)
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            cached = self.store.cached_answers(k for _, _, k in batch) if plan.use_cache else {}
            missing = [(item, key) for _, item, key in batch if key not in cached]
            fresh = self._answer(lane, missing, mode) if missing else {}
            records = []
            for _seq, item, key in batch:
                entry = cached.get(key) or fresh[key]
                records.append(self._record(lane, item, key, entry, cached=key in cached, metrics=metrics))
            if judge is not None:
                self._judge_records(records, batch, judged, judge, plan.judge or "")
            with self.store.transaction():
                self.store.put_answers(fresh)
                self.store.add_records(run_id, records, [seq for seq, _, _ in batch])
            self.progress.advance(len(batch))

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
                    [i.prompt for i, _ in group], list(LETTERS[:count])
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
            questions = [self._question(item) for item, _ in todo]
            answers = lane.strategy.answer(questions)
            for (item, key), answer in zip(todo, answers, strict=True):
                self.model_calls += answer.usage.model_calls
                out[key] = _answer_entry(answer, item)
        compute_s = (time.perf_counter() - started) / max(1, len(todo))
        for entry in out.values():
            entry["compute_s"] = compute_s
            entry.setdefault("latency_s", compute_s)
        return out

    @staticmethod
    def _question(item: SuiteItem) -> Question:
        q = item.question
        prompt = item.prompt if item.prompt and item.prompt != q.user_input else None
        return Question(
            q.user_input,
            id=q.id,
            reference=q.reference,
            reference_contexts=q.reference_contexts,
            choices=q.choices,
            tags=list(q.tags),
            prompt=prompt,
        )

    @staticmethod
    def _record(
        lane: Lane, item: SuiteItem, key: str, entry: dict[str, Any], cached: bool, metrics: Sequence[Metric]
    ) -> ItemRecord:
        answer = Answer(
            item.question.user_input,
            entry.get("response") or "",
            _usage(entry),
            0.0,
            "",
            retrieved_contexts=entry.get("retrieved_contexts") or [],
        )
        sample = build_sample(
            item,
            answer if entry.get("response") is not None else None,
            choice_scores=entry.get("choice_scores"),
        )
        scores = {}
        for metric in metrics:
            score = metric.score(sample)
            scores[metric.label] = ItemScore(score.value, score.reason, dict(score.detail))
        q = item.question
        return ItemRecord(
            strategy=lane.label,
            item_id=q.id,
            cache_key=key,
            user_input=q.user_input,
            prompt=entry.get("prompt") or item.prompt,
            response=entry.get("response"),
            reference=q.reference,
            retrieved_contexts=list(entry.get("retrieved_contexts") or []),
            reference_contexts=q.reference_contexts,
            choices=q.choices,
            choice_scores=entry.get("choice_scores"),
            scores=scores,
            prompt_tokens=int(entry.get("prompt_tokens", 0)),
            completion_tokens=int(entry.get("completion_tokens", 0)),
            model_calls=int(entry.get("model_calls", 0)),
            latency_s=float(entry.get("latency_s", 0.0)),
            compute_s=float(entry.get("compute_s", 0.0)),
            model_id=str(entry.get("model_id", "")),
            subject=item.subject,
            category=item.category,
            tags=list(q.tags),
            source=item.source,
            cached=cached,
            trace=list(entry.get("trace") or []),
        )

    def _judge_records(
        self,
        records: list[ItemRecord],
        batch: Sequence[tuple[int, SuiteItem, str]],
        judged: Sequence[Metric],
        judge: Any,
        judge_name: str,
    ) -> None:
        judge_id = str(getattr(judge, "model_id", judge_name))
        keys = [
            _hash([key, item.question.reference, item.question.reference_contexts]) for _, item, key in batch
        ]
        for metric in judged:
            known = self.store.cached_judgements(keys, judge_id, metric.label)
            todo = [i for i, key in enumerate(keys) if key not in known]
            if todo:
                samples = [_sample_of(records[i], batch[i][1]) for i in todo]
                scores = metric.score_many(samples, judge)  # type: ignore[attr-defined]
                fresh = {
                    keys[i]: ItemScore(s.value, s.reason, dict(s.detail))
                    for i, s in zip(todo, scores, strict=True)
                }
                with self.store.transaction():
                    self.store.put_judgements(fresh, judge_id, metric.label)
                known.update(fresh)
            for record, key in zip(records, keys, strict=True):
                record.scores[metric.label] = known[key]


def _usage(entry: Mapping[str, Any]) -> Any:
    from assistant.types import Usage

    return Usage(
        int(entry.get("prompt_tokens", 0)),
        int(entry.get("completion_tokens", 0)),
        int(entry.get("model_calls", 0)),
    )


def _answer_entry(answer: Answer, item: SuiteItem) -> dict[str, Any]:
    return {
        "response": answer.response,
        "retrieved_contexts": list(answer.retrieved_contexts),
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
        "model_calls": answer.usage.model_calls,
        "latency_s": answer.latency_s,
        "model_id": answer.model_id,
        "prompt": item.prompt,
        "trace": [{"kind": s.kind, **s.detail} for s in answer.trace.steps],
    }


def _sample_of(record: ItemRecord, item: SuiteItem) -> dict[str, Any]:
    answer = Answer(
        record.user_input,
        record.response or "",
        _usage({}),
        0.0,
        "",
        retrieved_contexts=record.retrieved_contexts,
    )
    return build_sample(item, answer if record.response is not None else None)


__all__ = ["COMPLETE", "FAILED", "EvalPlan", "Runner", "model_identity"]

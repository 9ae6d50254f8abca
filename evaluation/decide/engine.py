"""The ladder: climb the rungs in order of cost, stop at the first that meets the bar, and
say why, with the evidence.

    decision = run_decision(load_decision_config("decide.yaml"), settings, progress)

1. ``plan_decision`` checks everything that needs no model call (suites, targets, overlaps,
   training data, each rung's config) and orders the rungs by their stated cost.
2. Each rung is evaluated on the dev split through the evaluation runner (its answer cache
   and resume make a re-run free and an interrupted run continue), and judged by the stop
   rule (``decide_rules``). The climb stops at the first rung that meets.
3. When none meets: the gap diagnosis, fine-tuning readiness and, if ``allow_finetune``, the
   fine-tuning rung: train (or reuse) the adapter, evaluate it on dev, test and the general
   suite, check forgetting, and try it under RAG when a knowledge base is set.
4. The recommended rung is confirmed on the held-out test split; the decision is stored.

The CLI (``ladder decide``), the UI and ``ladder demo`` all call ``run_decision``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.progress import NullProgress, Progress
from assistant.settings import Settings
from evaluation.decide.config import DecisionConfig, load_decision_config
from evaluation.decide.diagnose import diagnose, no_closest_at_chance
from evaluation.decide.judge_gate import decision_judge, gate_judged_targets
from evaluation.decide.learning import (
    curve_rung,
    fewshot_curve,
    fewshot_pool,
    finetune_curve,
    training_minutes,
)
from evaluation.decide.plan import DecisionPlan, PlannedRung, plan_decision
from evaluation.decide.readiness import measured, readiness
from evaluation.decide.result import (
    EVALUATED,
    MET,
    NOT_CONFIRMED,
    NOT_MET,
    NOT_RUN,
    RECOMMENDED_ONLY,
    SKIPPED,
    TIE,
    Decision,
    Reason,
    RungResult,
    SuiteScores,
)
from evaluation.decide.route import offer_reason, route_reasons, try_route
from evaluation.decide.rules import all_pairs, choose, estimate, judge_rung, suite_scores, target_misses
from evaluation.decide.search import (
    RungSearch,
    Scored,
    SliceSearch,
    given_knobs,
    knob_space,
    search_knobs,
    split_dev,
)
from evaluation.decide.store import DecisionStore, new_decision_id
from evaluation.decide.training import (
    Trainer,
    decision_dir,
    forgetting,
    prepared_data,
    record_evaluation,
    train_adapter,
    train_on,
)
from evaluation.decide.warnings import say_warning, unreviewed_suites
from evaluation.results import ItemRecord, RunResult
from evaluation.store import RunStore, now

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend

__all__ = ["Evaluator", "load_decision_config", "run_decision"]

# A fine-tune's learning curve trains again on 25 % and 50 % of the data: about 0.75x the run.
CURVE_TRAINING = 0.75


class Evaluator:
    """Evaluates one strategy on one suite through the runner; tests may substitute their own."""

    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        progress: Progress,
        backend: LLMBackend | None = None,
        judge: Any = None,
    ) -> None:
        self.settings, self.store, self.progress = settings, store, progress
        self.backend, self.judge = backend, judge
        self.model_calls = 0
        self.judge_calls = 0

    def evaluate(
        self,
        suite: Path,
        strategy: dict[str, Any],
        model: str,
        config: DecisionConfig,
        *,
        injected: bool = True,
        items: Sequence[str] | None = None,
    ) -> RunResult:
        """``injected=False`` loads ``model`` by reference even when a backend was injected (an adapter);
        ``items``: only the dev items with these ids (the rung search's slices)."""
        from evaluation.runner import EvalPlan, Runner

        plan = EvalPlan(
            suite=suite,
            strategies=[dict(strategy)],
            model=model,
            # One judge for every rung (never the rung's own model grading itself).
            judge=decision_judge(config, self.settings),
            no_judge=config.no_judge,
            limit=config.limit,
            items=items,
            # Single requests are measured only when a latency limit will read them: each costs
            # a few unbatched answers per rung and suite.
            latency_sample=None if config.max_p95_latency_s is not None else 0,
        )
        backend = self.backend if injected else None
        runner = Runner(self.settings, self.store, self.progress, backend=backend, judge=self.judge)
        run = runner.run(plan)
        self.model_calls += run.model_calls
        self.judge_calls += run.judge_calls or 0
        return run


class _Climb:
    """One decision's state while it runs."""

    def __init__(
        self, plan: DecisionPlan, settings: Settings, evaluator: Evaluator, progress: Progress
    ) -> None:
        self.plan, self.config, self.settings = plan, plan.config, settings
        self.evaluator, self.progress = evaluator, progress
        self.records: dict[str, list[ItemRecord]] = {}
        self.metrics = [m.label for m in plan.dev.metrics]
        self.search_deadline: float | None = None  # set when the first search starts

    def scores(self, run: RunResult, label: str | None = None) -> SuiteScores:
        lane = run.strategies[0].strategy
        if label is not None:
            self.records[label] = run.records_for(lane)
        suite_metrics = run.strategies[0].metrics
        metrics = [m for m in self.metrics if m in suite_metrics] or list(suite_metrics)
        return suite_scores(run, lane, metrics, self.config.targets, self.config.confidence)

    def evaluate(
        self, rung: RungResult, strategy: dict[str, Any], model: str, *, injected: bool = True
    ) -> RunResult:
        run = self.evaluator.evaluate(self.config.dev, strategy, model, self.config, injected=injected)
        rung.dev, rung.state, rung.model = self.scores(run, rung.label), EVALUATED, model
        judge_rung(rung, self.config)
        return run

    def climb(self, rungs: list[RungResult], planned: Sequence[PlannedRung]) -> None:
        total = sum(1 for p in planned if not p.skip and not p.spec.is_finetune)
        step = 0
        for rung, plan in zip(rungs, planned, strict=True):
            if plan.spec.is_finetune:
                continue
            if plan.skip:
                rung.state, rung.note = SKIPPED, plan.skip
                continue
            if any(r.meets for r in rungs):
                rung.state, rung.note = NOT_RUN, "an earlier rung met the target"
                continue
            step += 1
            self.progress.note(
                f"rung {step}/{total}: {rung.label} on {self.plan.dev.spec.name} "
                f"({min(len(self.plan.dev.items), self.config.limit or len(self.plan.dev.items))} items)"
            )
            model = plan.model or self.plan.model
            # A rung on another model is loaded by reference; the injected backend is the base's.
            run = self.evaluate(rung, plan.strategy, model, injected=model == self.plan.model)
            if not rung.meets and self.config.search.covers(rung.label, rung.strategy):
                self.search(rung, plan, run.mode)

    # ---- the rung search -------------------------------------------------------------------------
    def _means(self, records: Sequence[ItemRecord]) -> dict[str, float | None]:
        return {
            t.metric: estimate(records, t.metric, self.config.confidence, t).mean for t in self.config.targets
        }

    def _meets(self, records: Sequence[ItemRecord]) -> bool:
        scores = SuiteScores(self.plan.dev.spec.name, None, items=len(records))
        for t in self.config.targets:
            scores.metrics[t.metric] = estimate(records, t.metric, self.config.confidence, t)
        return not target_misses(scores, self.config.targets)

    def _time_left(self) -> float | None:
        minutes = self.config.search.max_minutes
        if minutes is None:
            return None
        if self.search_deadline is None:
            self.search_deadline = time.perf_counter() + 60 * minutes
        return self.search_deadline - time.perf_counter()

    def search(self, rung: RungResult, planned: PlannedRung, mode: str = "generate") -> None:
        """Search the rung's knobs on a tuning slice of dev; judge the chosen configuration on the
        rest (see ``decide.search``). The rung's dev scores and config become the chosen ones'."""
        spec = self.config.search
        pool = len(fewshot_pool(planned.strategy)) if rung.strategy == "fewshot" else None
        space = knob_space(planned.strategy, pool)
        if mode == "logprob":
            # Scored by the options' log-probabilities: an output instruction changes nothing.
            space.pop("output_format", None)
        if not space:
            return
        base = self.records[rung.label]
        ids = [r.item_id for r in base]
        found = RungSearch(list(space), "")
        rung.search = found
        if len(ids) < spec.min_items:
            found.note = (
                f"dev has {len(ids)} items, fewer than search.min_items ({spec.min_items}): not split"
            )
            return
        given = given_knobs(planned.strategy, space)
        ops = {t.metric: t.op for t in self.config.targets}
        model = rung.model or self.plan.model
        injected = model == self.plan.model
        lane = rung.label
        for index in range(spec.slices):
            left = self._time_left()
            if left is not None and left <= 0:
                found.note = "the search's time budget (search.max_minutes) was spent"
                break
            seed = spec.seed + index
            tuning, rest = split_dev(ids, spec.tuning_fraction, seed)
            tuning_set, rest_set = set(tuning), set(rest)
            self.progress.note(
                f"searching {lane}'s {', '.join(space)} on {len(tuning)} dev items "
                f"(slice {index + 1}/{spec.slices}, judged on the other {len(rest)})"
            )

            def score(knobs: dict[str, Any], tuning: list[str] = tuning) -> Scored:
                run = self.evaluator.evaluate(
                    self.config.dev,
                    {**planned.strategy, **knobs},
                    model,
                    self.config,
                    injected=injected,
                    items=tuning,
                )
                return Scored(self._means(run.records_for(run.strategies[0].strategy)), run.model_calls)

            attempts, sampler, note = search_knobs(
                given,
                Scored(self._means([r for r in base if r.item_id in tuning_set])),
                space,
                score,
                ops,
                max_attempts=spec.max_attempts,
                timeout_s=left,
                seed=seed,
            )
            found.sampler, found.note = sampler, note or found.note
            chosen = next(a for a in attempts if a.chosen)
            given_rest = [r for r in base if r.item_id in rest_set]
            result = SliceSearch(seed, len(tuning), len(rest), attempts, dict(chosen.knobs))
            result.given_rest = self._means(given_rest)
            if chosen.given:
                result.chosen_rest, result.meets = result.given_rest, self._meets(given_rest)
            else:
                strategy = {**planned.strategy, **chosen.knobs}
                run = self.evaluator.evaluate(
                    self.config.dev, strategy, model, self.config, injected=injected, items=rest
                )
                chosen_rest = run.records_for(run.strategies[0].strategy)
                result.chosen_rest, result.meets = self._means(chosen_rest), self._meets(chosen_rest)
                if index == 0:
                    # The verdict: the chosen configuration on items its choice never saw.
                    rung.config = strategy
                    rung.dev = self.scores(run, lane)
                    judge_rung(rung, self.config)
            found.slices.append(result)

    def finetune(
        self, rung: RungResult, rungs: list[RungResult], decision: Decision, trainer: Trainer | None
    ) -> None:
        config, plan = self.config, self.plan
        if not config.finetune.has_data:
            rung.state, rung.note = RECOMMENDED_ONLY, "no training data configured"
            return
        decision.readiness = readiness(
            config, self.settings, plan.training, plan.dev_leaks, plan.model, plan.adapter
        )
        if not config.allow_finetune:
            rung.state, rung.note = RECOMMENDED_ONLY, "allow_finetune is off: recommended, not run"
            return
        if not decision.readiness.ready:
            note = (
                "over the time budget (finetune.max_minutes): recommended with the command, not started"
                if decision.readiness.only_over_budget
                else "the training data is not ready (see readiness)"
            )
            rung.state, rung.note = RECOMMENDED_ONLY, note
            return
        minutes = training_minutes(decision.readiness)
        estimate = f"estimated {minutes:.1f} min on this machine" if minutes is not None else "no estimate"
        self.progress.note(f"fine-tuning {plan.adapter} on {plan.model} ({estimate})")
        started = time.perf_counter()
        model, _ = train_adapter(config, self.settings, plan.model, plan.adapter, self.progress, trainer)
        decision.adapter = plan.adapter
        self.progress.note(f"fine-tuning took {(time.perf_counter() - started) / 60:.1f} min ({estimate})")
        # The adapter (trained now, or reused: same base, data and settings) has a training run:
        # its throughput and token count replace the estimate from the examples' text.
        decision.readiness = measured(decision.readiness, self.settings, plan.model, plan.adapter)
        strategy = next(p.strategy for p in plan.rungs if p.spec.is_finetune)
        run = self.evaluate(rung, strategy, model, injected=False)
        self._record(decision, "dev", run, rung.dev)
        test = self.evaluator.evaluate(config.test, strategy, model, config, injected=False)
        rung.test = self.scores(test)
        self._record(decision, "test", test, rung.test)
        if plan.general is not None and config.general is not None and plan.general_metric:
            before = self.evaluator.evaluate(config.general, strategy, plan.model, config)
            after = self.evaluator.evaluate(config.general, strategy, model, config, injected=False)
            rung.general = self.scores(after)
            self._record(decision, "general", after, rung.general)
            higher = next(m.higher_is_better for m in plan.general.metrics if m.label == plan.general_metric)
            check = forgetting(before, after, plan.general_metric, config.finetune.max_forgetting, higher)
            decision.forgetting = check
            if not check.passed:
                rung.meets = False
                rung.misses.append(
                    Reason(
                        "forgetting",
                        {
                            "metric": check.metric,
                            "before": check.before,
                            "after": check.after,
                            "drop": check.drop,
                            "max_drop": check.max_drop,
                        },
                    )
                )
            offered = offer_reason(check, config.finetune.route)
            if offered is not None:
                try_route(self, offered, rung, rungs, decision, strategy, model, before, check)
        if config.kb and config.finetune.try_rag:
            extra = RungResult("finetune+rag", "rag", config={"strategy": "rag", "kb": config.kb})
            rungs.append(extra)
            self.evaluate(extra, extra.config, model, injected=False)
            if decision.forgetting is not None and not decision.forgetting.passed:
                extra.meets = False
                extra.misses.append(
                    Reason(
                        "forgetting",
                        {
                            "metric": decision.forgetting.metric,
                            "drop": decision.forgetting.drop,
                            "max_drop": decision.forgetting.max_drop,
                        },
                    )
                )

    def curve(self, rungs: list[RungResult], decision: Decision, trainer: Trainer | None) -> None:
        """The learning curve of the fine-tune (else few-shot) rung; see ``decide.learning``."""
        rung = curve_rung(rungs)
        if rung is None:
            return
        config, plan = self.config, self.plan
        records = self.records[rung.label]

        def evaluate(strategy: dict[str, Any], model: str, ids: list[str]) -> RunResult:
            # The injected backend answers for the base model only (an adapter is loaded by reference).
            injected = model == plan.model
            return self.evaluator.evaluate(config.dev, strategy, model, config, injected=injected, items=ids)

        folder = decision_dir(config, self.settings) / "curve"
        if rung.strategy == "fewshot":
            self.progress.note(f"learning curve: {rung.label} with smaller example pools")
            model = rung.model or plan.model
            decision.curve = fewshot_curve(config, rung, records, evaluate, model, folder)
            return
        minutes, limit = training_minutes(decision.readiness), config.finetune.max_minutes
        if limit is not None and (minutes is None or CURVE_TRAINING * minutes > limit):
            took = "unknown" if minutes is None else f"{minutes:.1f}"
            decision.curve_note = (
                f"not measured: it trains again on 25 % and 50 % of the data, about {CURVE_TRAINING:g}x "
                f"the training run ({took} min), over finetune.max_minutes ({limit:g})"
            )
            return
        data = prepared_data(config, self.settings, self.progress)

        def train(folder: Path, suffix: str) -> str:
            name = f"{plan.adapter}-{suffix}"
            return train_on(config, self.settings, plan.model, folder, name, self.progress, trainer)

        self.progress.note(f"learning curve: {rung.label} trained on 25 % and 50 % of the data")
        decision.curve = finetune_curve(config, rung, records, data, train, evaluate, folder)

    def _record(self, decision: Decision, role: str, run: RunResult, scores: SuiteScores | None) -> None:
        means = {k: v.mean for k, v in (scores.metrics if scores else {}).items()}
        record_evaluation(self.plan.adapter, self.settings, decision.decision_id, role, run, means)

    def confirm(self, rung: RungResult, decision: Decision) -> None:
        """Evaluate the recommended rung on the held-out test split."""
        if rung.test is None:
            self.progress.note(f"confirming {rung.label} on {self.plan.test.spec.name}")
            model = rung.model or self.plan.model
            # The fine-tuned model is loaded by reference, never answered by an injected backend.
            run = self.evaluator.evaluate(
                self.config.test, rung.config, model, self.config, injected=model == self.plan.model
            )
            rung.test = self.scores(run)
        misses = target_misses(rung.test, self.config.targets, use_bound=False)
        if misses:
            decision.status = NOT_CONFIRMED
            decision.reasons.append(
                Reason("test_misses", {"rung": rung.label, "misses": [m.params for m in misses]})
            )
        elif target_misses(rung.test, self.config.targets):
            decision.reasons.append(Reason("test_mean_only", {"rung": rung.label}))
        else:
            decision.reasons.append(Reason("test_confirms", {"rung": rung.label}))


def run_decision(
    config: DecisionConfig,
    settings: Settings,
    progress: Progress | None = None,
    *,
    backend: LLMBackend | None = None,
    judge: Any = None,
    evaluator: Evaluator | None = None,
    trainer: Trainer | None = None,
    allow_finetune: bool | None = None,
    language: str | None = None,
    store: bool = True,
) -> Decision:
    """Decide, store and return the decision. ``backend`` answers for every base-model rung (tests,
    demos); the fine-tuned model is always loaded by reference. Bad input raises ``ConfigError``
    before any model call."""
    started = time.perf_counter()
    progress = progress or NullProgress()
    if allow_finetune is not None:
        config.allow_finetune = allow_finetune
    plan = plan_decision(config, settings)
    # Before any rung: a judged target needs a judge that agrees with people (checked now if never).
    gates = gate_judged_targets(config, settings, plan.dev.metrics, judge, progress)
    run_store = DecisionStore(settings.db_path)
    try:
        evaluator = evaluator or Evaluator(settings, run_store, progress, backend, judge)
        climb = _Climb(plan, settings, evaluator, progress)
        decision = Decision(
            decision_id=new_decision_id(),
            name=config.name,
            created=now(),
            status=NOT_MET,
            recommended=None,
            config_path=str(config.path or ""),
            model=plan.model,
            dev_suite=plan.dev.spec.name,
            test_suite=plan.test.spec.name,
            general_suite=plan.general.spec.name if plan.general else None,
            targets=[str(t) for t in config.targets],
            confidence=config.confidence,
            limits={"max_cost_per_1k": config.max_cost_per_1k, "max_p95_latency_s": config.max_p95_latency_s},
            language=language or config.language or settings.language,
        )
        if gates:
            decision.judge = decision_judge(config, settings)
            decision.judge_agreement = {g.metric: g.describe() for g in gates}
        decision.warnings = unreviewed_suites(plan.dev, plan.test)
        for warning in decision.warnings:  # said before the climb too: a decision can run for hours
            progress.note(say_warning(warning, decision.language))
        rungs = [
            RungResult(p.spec.label, p.spec.strategy, stated_cost=p.stated_cost, config=p.strategy)
            for p in plan.rungs
        ]
        decision.rungs = rungs
        climb.climb(rungs, plan.rungs)
        finetune_rung = next((r for r in rungs if r.strategy == "finetune"), None)
        if finetune_rung is not None:
            if any(r.meets for r in rungs):
                finetune_rung.state, finetune_rung.note = NOT_RUN, "an earlier rung met the target"
            else:
                climb.finetune(finetune_rung, rungs, decision, trainer)
        decision.comparisons = all_pairs(rungs, climb.records, config)
        winner, recommended, reasons = choose(rungs, decision.comparisons, config, climb.records)
        decision.reasons = reasons + route_reasons(decision)
        if recommended is not None:
            decision.recommended = recommended.label
            decision.status = TIE if recommended.label != winner else MET
            climb.confirm(recommended, decision)
            if recommended.strategy == "finetune" and decision.forgetting is None:
                # Nothing says whether the adapter kept its general ability: say so, with the fix.
                decision.reasons.append(Reason("forgetting_unchecked", {"rung": recommended.label}))
        cheaper_met = any(r.meets and r.strategy != "finetune" for r in rungs)
        if not cheaper_met:
            decision.gaps = diagnose(rungs, decision.comparisons, climb.records, config)
            if not any(r.meets for r in rungs):
                decision.reasons = no_closest_at_chance(decision.reasons, decision.gaps)
        if config.learning_curve and not any(r.meets for r in rungs):
            climb.curve(rungs, decision, trainer)
        decision.model_calls = evaluator.model_calls
        decision.judge_calls = getattr(evaluator, "judge_calls", 0)  # a stand-in evaluator may count none
        decision.wall_s = time.perf_counter() - started
        if store:
            run_store.save(decision)
    finally:
        run_store.close()
    return decision


EXIT_MET, EXIT_NOT_MET = 0, 1


def exit_code(decision: Decision) -> int:
    """0 when the recommended rung met the target (and the test split did not contradict it), else 1."""
    return EXIT_MET if decision.status in (MET, TIE) else EXIT_NOT_MET

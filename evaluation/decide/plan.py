"""Checking a decision before any model is called: the suites load, the targets name metrics
the suites produce, the splits do not overlap, the training data exists and does not leak
into the test split or a shipped suite (the leakage check every path into training runs,
``assistant.leakage``), and every rung builds. The rungs come out in ladder order with their
stated cost (expected tokens per question, from the strategy itself).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError, LadderError
from assistant.models.refs import parse_model_ref
from assistant.settings import Settings
from evaluation.decide.config import NEEDS_KB, DecisionConfig, RungSpec
from evaluation.decide.models import compute_scale, larger_pack
from evaluation.suites.spec import Suite, load_suite

if TYPE_CHECKING:
    from finetune.data.load import Example


@dataclass
class PlannedRung:
    spec: RungSpec
    strategy: dict[str, Any]  # the strategy config to evaluate (kb / examples filled in)
    stated_cost: float | None
    skip: str | None = None  # why this rung is left out (a default rung missing its inputs)
    model: str = ""  # the model it is evaluated with (the decision's, unless the rung names one)


@dataclass
class DecisionPlan:
    config: DecisionConfig
    model: str
    dev: Suite
    test: Suite
    general: Suite | None
    rungs: list[PlannedRung]
    adapter: str
    training: list[Example] = field(default_factory=list)
    dev_leaks: int = 0
    general_metric: str | None = None


def _questions(suite: Suite) -> list[Any]:
    from assistant.leakage import EvalQuestion

    return [
        EvalQuestion(suite.spec.name, i.question.id or i.source, i.question.user_input) for i in suite.items
    ]


def _overlap(reference: list[Any], probes: list[Example]) -> list[dict[str, Any]]:
    """The probes that repeat a question of ``reference`` (``EvalQuestion``s): the leakage check
    every path into training runs (``assistant.leakage`` through ``finetune.data.dedup``)."""
    from finetune.data.dedup import LeakageChecker

    return LeakageChecker(reference).split(probes)[1]


def _shipped_questions(dev: Suite, test: Suite) -> list[Any]:
    """The questions of the suites Ladder ships (``datasets/suites``), other than dev and test."""
    from assistant.leakage import load_eval_questions
    from evaluation.suites.source import SuiteFiles

    own = {dev.spec.name, test.spec.name}
    questions, _ = load_eval_questions(SuiteFiles())
    return [q for q in questions if q.suite not in own]


def _refuse_training_leaks(leaks: list[dict[str, Any]], what: str, hint: str) -> None:
    if leaks:
        first = leaks[0]
        raise ConfigError(
            f"the training data overlaps {what}: {len(leaks)} training example(s) match its questions "
            f"(first: {first['source']} ~ {first['suite']} {first['item']}, {first['match']})",
            hint=hint,
        )


def _as_examples(suite: Suite) -> list[Example]:
    from finetune.data.load import Example

    return [
        Example(
            messages=[{"role": "user", "content": i.question.user_input}],
            source=f"{suite.spec.name}:{i.question.id or i.source}",
        )
        for i in suite.items
    ]


def _fix_targets(config: DecisionConfig, dev: Suite, test: Suite) -> None:
    produced = {m.label: m for m in dev.metrics}
    in_test = {m.label for m in test.metrics}
    fixed = []
    for target in config.targets:
        metric = produced.get(target.metric)
        if metric is None:
            raise ConfigError(
                f"target {target.metric!r} is not a metric of the dev suite {dev.spec.name}",
                hint=f"its metrics: {', '.join(produced)} (add it to the suite's `metrics`)",
            )
        if target.metric not in in_test:
            raise ConfigError(f"target {target.metric!r} is not a metric of the test suite {test.spec.name}")
        if config.no_judge and getattr(metric, "needs_judge", False):
            raise ConfigError(f"target {target.metric!r} needs a judge, but no_judge is set")
        bounds = metric.bounds
        if bounds is not None and not bounds[0] <= target.value <= bounds[1]:
            raise ConfigError(f"target {target} is outside {bounds[0]:g}..{bounds[1]:g}")
        op = target.op or (">=" if metric.higher_is_better else "<=")
        fixed.append(dataclasses.replace(target, op=op))
    config.targets = fixed


def _strategy_data(spec: RungSpec, config: DecisionConfig) -> dict[str, Any]:
    data = dict(spec.config)
    if config.kb and spec.strategy in ("rag", "agent") and not data.get("kb"):
        data["kb"] = config.kb
    if (
        spec.strategy == "fewshot"
        and not data.get("examples")
        and not data.get("examples_file")
        and config.examples
    ):
        data["examples_file"] = str(config.examples)
    return data


def _plan_rung(spec: RungSpec, config: DecisionConfig, settings: Settings, base: str) -> PlannedRung:
    from assistant.backends.fake import FakeBackend
    from assistant.service import build_strategy

    serve = config.finetune.strategy
    data = _strategy_data(spec, config)
    if spec.is_finetune:
        data = dict(serve) if isinstance(serve, dict) else {"strategy": serve}
    missing = None
    if spec.strategy in NEEDS_KB and not data.get("kb"):
        missing = "no knowledge base: set `kb`"
    elif spec.strategy == "fewshot" and not data.get("examples") and not data.get("examples_file"):
        missing = "no few-shot examples: set `examples`"
    if missing:
        if config.explicit_rungs:
            raise ConfigError(f"rung {spec.label!r}: {missing}")
        return PlannedRung(spec, data, None, skip=missing, model=spec.model or base)
    try:
        # A stand-in backend: building checks the config (and opens the kb); cost() calls no model.
        strategy = build_strategy(data, settings, backend=FakeBackend(model_id="plan"))
    except LadderError as exc:
        raise ConfigError(f"rung {spec.label!r}: {exc.message}", hint=exc.hint) from None
    if spec.is_finetune:
        # The fine-tuned model answers like its serving strategy; training is paid once, not per question.
        return PlannedRung(spec, data, None, model=base)
    model = spec.model or base
    if spec.model is not None:
        try:
            ref = parse_model_ref(spec.model, settings)
            if ref.kind in ("pack", "folder"):
                ref.local_folder(settings)  # installed (a pack is never pulled by a decision)
        except LadderError as exc:
            if not config.explicit_rungs:
                return PlannedRung(spec, data, None, skip=f"{exc.message} ({exc.hint})", model=model)
            raise ConfigError(f"rung {spec.label!r}: {exc.message}", hint=exc.hint) from None
    # Tokens per question, scaled for another local pack by the packs' sizes (see decide.models).
    return PlannedRung(spec, data, strategy.cost().total_tokens * compute_scale(model, base), model=model)


def plan_decision(config: DecisionConfig, settings: Settings) -> DecisionPlan:
    """Every check that needs no model call; raises ``ConfigError`` (exit 2) on bad input."""
    from evaluation.decide.training import owned_adapter_name
    from finetune.adapters import check_name

    if not config.rungs:
        raise ConfigError("the rung list is empty", hint="list at least one rung, e.g. rungs: [prompt]")
    dev, test = load_suite(config.dev), load_suite(config.test)
    general = load_suite(config.general) if config.general else None
    _fix_targets(config, dev, test)
    # Dev and test may hold hard negatives one word apart ("青松会员" / "青禾会员", different
    # answers): only the same question (exact, or contained whole) is an overlap between them.
    leaks = [x for x in _overlap(_questions(test), _as_examples(dev)) if x["match"] != "near"]
    if leaks:
        first = leaks[0]
        raise ConfigError(
            f"the test split overlaps the dev split: {len(leaks)} dev question(s) match test questions "
            f"(first: {first['source']} ~ {first['item']}, {first['match']})",
            hint="a held-out split must not repeat dev questions: remove them from one of the two",
        )
    adapter = check_name(config.finetune.adapter or owned_adapter_name(config))
    has_finetune = any(r.is_finetune for r in config.rungs)
    if config.allow_finetune and has_finetune and not config.finetune.has_data:
        raise ConfigError(
            "allow_finetune is set but there is no training data",
            hint="set finetune.data (a `ladder finetune prepare` folder) or finetune.raw (files to prepare)",
        )
    training: list[Example] = []
    dev_leaks = 0
    if has_finetune and config.finetune.has_data:
        from evaluation.decide.readiness import load_training_examples

        training = load_training_examples(config)
        # The check of every path into training (exact, normalised, near duplicates, paraphrase
        # groups) against the test split and the shipped suites refuses; against dev it counts
        # (readiness reports it: dev picks the rung, it is not the verdict).
        _refuse_training_leaks(
            _overlap(_questions(test), training),
            "the test split",
            "drop them (`ladder finetune prepare --suite TEST.yaml` does it)",
        )
        _refuse_training_leaks(
            _overlap(_shipped_questions(dev, test), training),
            "a suite Ladder ships (datasets/suites)",
            "drop them (`ladder finetune prepare` checks the shipped suites too)",
        )
        dev_leaks = len(_overlap(_questions(dev), training))
    base = config.model or settings.model
    specs = list(config.rungs)
    if config.try_larger_model and not config.explicit_rungs:
        larger = larger_pack(base, settings)
        if larger is not None:
            specs.append(RungSpec(f"prompt@{larger[0]}", "prompt", {"strategy": "prompt"}, larger[0]))
    rungs = [_plan_rung(spec, config, settings, base) for spec in specs]
    if config.order == "cost":
        # Stable: equal costs keep the given order; the finetune rung always comes last.
        rungs.sort(
            key=lambda r: (r.spec.is_finetune, r.stated_cost if r.stated_cost is not None else math.inf)
        )
    general_metric = None
    if general is not None:
        targets = {t.metric for t in config.targets}
        labels = [m.label for m in general.metrics]
        general_metric = next((m for m in labels if m in targets), labels[0])
    return DecisionPlan(
        config,
        base,
        dev,
        test,
        general,
        rungs,
        adapter,
        training,
        dev_leaks,
        general_metric,
    )

"""The ``route`` rung: offered when the plain fine-tune fails or nearly fails the forgetting check.

A fine-tune that learnt the domain but lost general ability need not be given up: the base +
adapter can answer in-domain questions with the adapter and the rest with the base alone, in one
model (``assistant.strategies.route``). The decision then measures, on its own suites:

- routing: the route rung's dev score on the first target metric against the fine-tuned model's
  (within the fine-tune's CI?), and its own stop rule on the targets;
- general ability: the route rung on the general suite against the **base's** score there (within
  the base's CI?), and the forgetting check again, now route against base;
- the router: its accuracy on the dev questions (all in-domain) and the general suite's (all
  general), the held-out balanced accuracy its threshold was calibrated to, and its time per
  question (each question routed alone, so the number is a user's wait, not a batch's share).

*Nearly fails*: the drop used at least half of ``max_forgetting`` (``NEAR_FORGETTING``); a fine-tune
that keeps its general ability well within the bound is not offered a router it does not need.
``finetune.route: false`` turns the rung off; a mapping sets the route strategy's router knobs
(``k``, ``embedder``, ``general``, ``max_examples``, ``threshold``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.decide.result import Decision, Forgetting, Reason, RouteCheck, RungResult

ROUTE_LABEL = "finetune+route"
# Offered when the fine-tune's drop on the general suite is at least this share of max_forgetting.
NEAR_FORGETTING = 0.5
# Questions routed one at a time to measure the router's time per question.
TIMED_QUESTIONS = 40
# The keys of a strategy config that carry over from the fine-tune's strategy to route.
_SHARED_KEYS = ("system_prompt", "answer_template", "output_format", "json_schema", "max_new_tokens",
                "temperature", "seed", "stop")  # fmt: skip


def offer_reason(check: Forgetting, route: bool | dict[str, Any]) -> str | None:
    """``"failed"`` / ``"near"`` when the route rung is offered, None when it is not."""
    if route is False or check.drop is None:
        return None
    if not check.passed:
        return "failed"
    if check.drop > 0 and check.drop >= NEAR_FORGETTING * check.max_drop:
        return "near"
    return None


def route_strategy(
    finetune_strategy: dict[str, Any], train: Path, route: bool | dict[str, Any]
) -> dict[str, Any]:
    """The route rung's strategy config: how the fine-tuned model is asked, the router's data."""
    config: dict[str, Any] = {k: v for k, v in finetune_strategy.items() if k in _SHARED_KEYS}
    config.update(strategy="route", in_domain=[str(train)])
    if isinstance(route, dict):  # its keys are checked when the config is read
        config.update(route)
    return config


def measure_router(
    settings: Any, strategy: dict[str, Any], in_domain: Sequence[str], general: Sequence[str]
) -> dict[str, Any]:
    """The router's accuracy on questions whose side is known, and its time per question."""
    from assistant.strategies.route import default_general_data
    from assistant.strategies.router import load_router

    general_files = strategy.get("general") or [str(default_general_data())]
    router = load_router(
        settings,
        strategy["in_domain"],
        [general_files] if isinstance(general_files, str) else general_files,
        embedder=strategy.get("embedder"),
        k=int(strategy.get("k", 5)),
        threshold=strategy.get("threshold"),
        validation_fraction=float(strategy.get("validation_fraction", 0.25)),
        max_examples=int(strategy.get("max_examples", 1000)),
        seed=int(strategy.get("router_seed", 0)),
    )
    to_adapter_in, _ = router.route(list(in_domain))
    to_adapter_general, _ = router.route(list(general))
    right_in = sum(to_adapter_in) / len(in_domain) if in_domain else None
    right_general = sum(not x for x in to_adapter_general) / len(general) if general else None
    timed = [*in_domain, *general][:TIMED_QUESTIONS]
    times = []
    for question in timed:
        started = time.perf_counter()
        router.route([question])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    report = router.report
    return {
        "embedder": report.embedder,
        "k": report.k,
        "threshold": report.threshold,
        "calibrated": report.calibrated,
        "validation_balanced_accuracy": report.validation_balanced_accuracy,
        "validation_items": report.validation_items,
        "in_domain_examples": report.in_domain_examples,
        "general_examples": report.general_examples,
        "fit_s": report.fit_s,
        "accuracy_in_domain": right_in,
        "accuracy_general": right_general,
        "balanced_accuracy": (right_in + right_general) / 2
        if right_in is not None and right_general is not None
        else None,
        "in_domain_items": len(in_domain),
        "general_items": len(general),
        "router_ms": sum(times) / len(times) if times else None,
        "router_ms_p95": times[min(len(times) - 1, int(0.95 * len(times)))] if times else None,
        "timed_questions": len(times),
    }


def _within(value: float | None, low: float | None, high: float | None) -> bool | None:
    if value is None or low is None or high is None:
        return None
    return low - 1e-9 <= value <= high + 1e-9


def route_check(
    reason: str,
    rung: RungResult,
    finetune: RungResult,
    base_general: Any,
    metric: str,
    general_metric: str,
    check: Forgetting,
    router: dict[str, Any],
) -> RouteCheck:
    """The comparisons the decision states: routing against the fine-tune, general against the base."""
    ft = finetune.dev.metrics.get(metric) if finetune.dev else None
    rt = rung.dev.metrics.get(metric) if rung.dev else None
    base = base_general.metrics.get(general_metric) if base_general is not None else None
    rg = rung.general.metrics.get(general_metric) if rung.general else None
    return RouteCheck(
        offered=reason,
        rung=rung.label,
        metric=metric,
        finetune_mean=ft.mean if ft else None,
        finetune_low=ft.low if ft else None,
        finetune_high=ft.high if ft else None,
        route_mean=rt.mean if rt else None,
        within_finetune_ci=_within(rt.mean if rt else None, ft.low if ft else None, ft.high if ft else None),
        general_metric=general_metric,
        base_mean=base.mean if base else None,
        base_low=base.low if base else None,
        base_high=base.high if base else None,
        route_general_mean=rg.mean if rg else None,
        within_base_ci=_within(
            rg.mean if rg else None, base.low if base else None, base.high if base else None
        ),
        finetune_general_mean=check.after,
        general_drop=None,
        router=router,
    )


def route_reasons(decision: Decision) -> list[Reason]:
    """The route rung in sentences (``decide.text``: ``route_offered_*``, ``route_routing_*``,
    ``route_general_*``, ``route_router``)."""
    r = decision.route
    if r is None:
        return []
    out = [Reason(f"route_offered_{r.offered}", {"rung": r.rung})]
    side = {True: "within", False: "outside"}
    if r.within_finetune_ci is not None:
        out.append(Reason(f"route_routing_{side[r.within_finetune_ci]}", {
            "rung": r.rung, "metric": r.metric, "route": r.route_mean, "finetune": r.finetune_mean,
            "low": r.finetune_low, "high": r.finetune_high,
        }))  # fmt: skip
    if r.within_base_ci is not None:
        out.append(Reason(f"route_general_{side[r.within_base_ci]}", {
            "rung": r.rung, "general_metric": r.general_metric, "route_general": r.route_general_mean,
            "base": r.base_mean, "base_low": r.base_low, "base_high": r.base_high,
            "finetune_general": r.finetune_general_mean,
        }))  # fmt: skip
    if r.router:
        out.append(Reason("route_router", {"rung": r.rung, **r.router}))
    return out


def route_rows(decision: Decision) -> list[str]:
    """The report's lines for the route rung."""
    r = decision.route
    if r is None:
        return []

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    def mark(ok: bool | None) -> str:
        return "?" if ok is None else "✓" if ok else "✗"

    router = r.router or {}
    how = "failed" if r.offered == "failed" else "nearly failed"
    return [
        f"offered: the fine-tune {how} the forgetting check",
        f"{mark(r.within_finetune_ci)} {r.metric} (dev): route {num(r.route_mean)} vs fine-tune "
        f"{num(r.finetune_mean)} [{num(r.finetune_low)}, {num(r.finetune_high)}]",
        f"{mark(r.within_base_ci)} {r.general_metric} (general): route {num(r.route_general_mean)} vs "
        f"base {num(r.base_mean)} [{num(r.base_low)}, {num(r.base_high)}], "
        f"fine-tune {num(r.finetune_general_mean)}",
        f"router ({router.get('embedder', 'n/a')}, k={router.get('k', 'n/a')}, threshold "
        f"{num(router.get('threshold'))}): in-domain {num(router.get('accuracy_in_domain'))} of "
        f"{router.get('in_domain_items', 0)}, general {num(router.get('accuracy_general'))} of "
        f"{router.get('general_items', 0)}, held-out balanced accuracy "
        f"{num(router.get('validation_balanced_accuracy'))}; {num(router.get('router_ms'))} ms/question "
        f"(p95 {num(router.get('router_ms_p95'))}, "
        f"{router.get('timed_questions', 0)} questions routed one by one)",
    ]


def try_route(
    climb: Any,
    reason: str,
    finetune: RungResult,
    rungs: list[RungResult],
    decision: Decision,
    strategy: dict[str, Any],
    model: str,
    before: Any,
    check: Forgetting,
) -> RungResult:
    """Evaluate the route rung (dev and the general suite), check its forgetting against the base,
    measure the router, and record it all in ``decision.route``. ``climb`` is the engine's
    ``_Climb`` (evaluate, evaluator, scores, plan, config, settings, progress)."""
    from evaluation.decide.training import forgetting, prepared_data

    config, plan = climb.config, climb.plan
    train = prepared_data(config, climb.settings, climb.progress) / "train.jsonl"
    route_config = route_strategy(strategy, train, config.finetune.route)
    rung = RungResult(ROUTE_LABEL, "route", config=route_config, stated_cost=finetune.stated_cost)
    rungs.append(rung)
    climb.progress.note(
        f"the fine-tune {'failed' if reason == 'failed' else 'nearly failed'} the forgetting check: "
        f"trying {ROUTE_LABEL} (in-domain questions to the adapter, the rest to the base)"
    )
    climb.evaluate(rung, route_config, model, injected=False)
    after = climb.evaluator.evaluate(config.general, route_config, model, config, injected=False)
    rung.general = climb.scores(after)
    higher = next(m.higher_is_better for m in plan.general.metrics if m.label == plan.general_metric)
    own = forgetting(before, after, plan.general_metric, config.finetune.max_forgetting, higher)
    if not own.passed:
        rung.meets = False
        params = {"metric": own.metric, "before": own.before, "after": own.after, "drop": own.drop,
                  "max_drop": own.max_drop}  # fmt: skip
        rung.misses.append(Reason("forgetting", params))
    climb.progress.note(f"measuring the router of {ROUTE_LABEL}")
    dev_questions = [i.question.user_input for i in plan.dev.items]
    general_questions = [i.question.user_input for i in plan.general.items]
    router = measure_router(climb.settings, route_config, dev_questions, general_questions)
    metric = config.targets[0].metric if config.targets else climb.metrics[0]
    base_general = climb.scores(before)
    decision.route = route_check(
        reason, rung, finetune, base_general, metric, plan.general_metric, check, router
    )
    decision.route.general_drop = own.drop
    return rung

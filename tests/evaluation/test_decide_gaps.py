"""The verdict when no rung meets: which rung is closest, which gap is named, and what the
explanation says, from synthetic runs (scripted per item) judged by the real rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation.decide.config import DecisionConfig
from evaluation.decide.diagnose import diagnose
from evaluation.decide.result import Gap, Reason
from evaluation.decide.rules import all_pairs, choose
from evaluation.results import RunResult
from tests.evaluation.test_decide_diagnose import config_for, hits, judged, synthetic_run


def closest_reason(runs: dict[str, tuple[str, RunResult]], config: DecisionConfig) -> Reason:
    rungs, records = judged(runs, config)
    winner, recommended, reasons = choose(rungs, all_pairs(rungs, records, config), config, records)
    assert winner is None and recommended is None
    return next(r for r in reasons if r.code.startswith("closest"))


def gaps(runs: dict[str, tuple[str, RunResult]], config: DecisionConfig) -> list[Gap]:
    rungs, records = judged(runs, config)
    return diagnose(rungs, all_pairs(rungs, records, config), records, config)


def f1(values: Sequence[float]) -> list[float | None]:
    return list(values)


# Reading comprehension as the issue found it: rag's token_f1 is higher than fewshot's but not
# significantly (40 items); rag answers 8 questions exactly, fewshot none.
FEWSHOT_F1 = f1([0.2] * 40)
RAG_F1 = f1([1.0] * 10 + [0.0] * 30)


def test_a_cheaper_rung_that_ties_on_the_target_but_loses_on_another_metric_is_not_closest() -> None:
    config = config_for({"token_f1": ">= 0.5"})
    runs = {
        "prompt": (
            "prompt",
            synthetic_run("prompt", {"token_f1": f1([0.1] * 40), "exact_match": hits(40, 0)}),
        ),
        "fewshot": (
            "fewshot",
            synthetic_run("fewshot", {"token_f1": FEWSHOT_F1, "exact_match": hits(40, 0)}),
        ),
        "rag": ("rag", synthetic_run("rag", {"token_f1": RAG_F1, "exact_match": hits(40, 8)})),
    }
    rungs, records = judged(runs, config)
    pairs = all_pairs(rungs, records, config)
    on_target = next(p for p in pairs if p.a == "rag" and p.b == "fewshot")
    assert not on_target.significant, "the target alone does not separate rag from fewshot"
    reason = closest_reason(runs, config)
    assert reason.code == "closest" and reason.params["rung"] == "rag"


def test_a_cheaper_rung_nothing_separates_is_named_as_an_equal() -> None:
    config = config_for({"token_f1": ">= 0.5"})
    runs = {
        "fewshot": (
            "fewshot",
            synthetic_run("fewshot", {"token_f1": FEWSHOT_F1, "exact_match": hits(40, 7)}),
        ),
        "rag": ("rag", synthetic_run("rag", {"token_f1": RAG_F1, "exact_match": hits(40, 8)})),
    }
    reason = closest_reason(runs, config)
    assert reason.code == "closest_equal"
    assert reason.params == {"rung": "fewshot", "best": "rag"}


def test_the_closest_is_the_best_mean_not_the_first_target_alone() -> None:
    config = config_for({"exact_match": ">= 0.8", "token_f1": ">= 0.5"})
    runs: dict[str, tuple[str, Any]] = {
        "prompt": (
            "prompt",
            synthetic_run("prompt", {"exact_match": hits(60, 40), "token_f1": f1([0.1] * 60)}),
        ),
        "fewshot": (
            "fewshot",
            synthetic_run("fewshot", {"exact_match": hits(60, 44), "token_f1": f1([0.6] * 60)}),
        ),
    }
    reason = closest_reason(runs, config)
    assert reason.params["rung"] == "fewshot", "fewshot clears token_f1 on the mean; prompt clears nothing"

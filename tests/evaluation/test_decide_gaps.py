"""The verdict when no rung meets: which rung is closest, which gap is named, and what the
explanation says, from synthetic runs (scripted per item) judged by the real rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings, load_settings
from evaluation.decide.config import DecisionConfig
from evaluation.decide.diagnose import diagnose, items_needed, no_closest_at_chance
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.decide.report import render_html, render_markdown
from evaluation.decide.result import (
    EVALUATED,
    Decision,
    Estimate,
    Gap,
    Readiness,
    Reason,
    RungResult,
    SuiteScores,
)
from evaluation.decide.rules import all_pairs, choose
from evaluation.decide.text import explain, say
from evaluation.results import RunResult
from tests.helpers.decide import CaseFake, rung, write_config
from tests.helpers.decide_runs import config_for, hits, judged, synthetic_run


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


def mcq_run(label: str, right: int, n: int = 60, options: int = 4) -> RunResult:
    """A multiple-choice run: ``right`` of ``n`` items answered correctly, ``options`` choices each."""
    run = synthetic_run(label, {"accuracy": hits(n, right)})
    for record in run.records:
        record.choices = [f"option {i}" for i in range(options)]
    return run


def exam(rights: dict[str, int], **kwargs: Any) -> dict[str, tuple[str, RunResult]]:
    return {label: (label, mcq_run(label, right, **kwargs)) for label, right in rights.items()}


def test_every_rung_at_chance_is_a_knowledge_gap_with_the_ways_out_and_their_cost() -> None:
    config = config_for({"accuracy": ">= 0.6"})
    runs = exam({"prompt": 14, "reflection": 11, "fewshot": 12})  # 0.233, 0.183, 0.200 on four options
    (gap,) = gaps(runs, config)
    assert gap.kind == "knowledge"
    at_chance = [e for e in gap.evidence if e.code == "at_chance"]
    assert [e.params["rung"] for e in at_chance] == ["prompt", "reflection", "fewshot"]
    assert all(e.params["chance"] == 0.25 and e.params["low"] <= 0.25 for e in at_chance)
    remedies = [e.code for e in gap.evidence if e.code.startswith("remedy_")]
    assert remedies == ["remedy_larger_model", "remedy_knowledge_source", "remedy_more_data"]
    more_data = next(e for e in gap.evidence if e.code == "remedy_more_data")
    assert more_data.params["min_examples"] == config.finetune.min_examples
    decision = Decision("d", "exam", "now", "not_met", None, gaps=[gap], rungs=[])
    rungs, records = judged(runs, config)
    _, _, decision.reasons = choose(rungs, all_pairs(rungs, records, config), config, records)
    assert any(r.code == "closest" for r in decision.reasons)
    decision.reasons = no_closest_at_chance(decision.reasons, decision.gaps)
    assert not any(r.code.startswith("closest") for r in decision.reasons)
    for lang in ("en", "zh"):
        text = " ".join(explain(decision, lang))
        assert "0.250" in text and "ladder models list" in text and "kb" in text
    english = " ".join(explain(decision, "en"))
    assert "does not know this" in english and "The closest" not in english


def test_a_rung_whose_answers_name_no_option_is_no_evidence_of_chance() -> None:
    """Found on a held-out exam: the agent answered "85" to every item (no option letter),
    scored 0.000 [0.000, 0.000], and was listed as "including chance". Its answers are off
    format: they say nothing of what the model knows."""
    from evaluation.results import ItemScore

    config = config_for({"accuracy": ">= 0.6"})
    runs = exam({"prompt": 14, "agent": 0})
    for record in runs["agent"][1].records:
        record.response = "85"
        record.scores["accuracy"] = ItemScore(
            0.0, "the answer names no option letter", {"predicted": None, "mode": "generate"}
        )
    (gap,) = gaps(runs, config)
    assert [e.params["rung"] for e in gap.evidence if e.code == "at_chance"] == ["prompt"]
    text = say(next(e for e in gap.evidence if e.code == "at_chance"), "en")
    assert "is no better than chance (0.250" in text


def test_chance_is_per_item_from_the_number_of_options() -> None:
    config = config_for({"accuracy": ">= 0.6"})
    runs = exam({"prompt": 12}, options=2)  # 0.2 against chance 0.5 on two options: below chance
    (gap,) = gaps(runs, config)
    assert gap.evidence[0].params["chance"] == 0.5


def test_a_rung_clearly_above_chance_is_no_knowledge_gap() -> None:
    config = config_for({"accuracy": ">= 0.8"})
    runs = exam({"prompt": 14, "fewshot": 33})  # fewshot 0.55, its CI well above 0.25
    assert not [g for g in gaps(runs, config) if g.kind == "knowledge"]


def test_labels_compare_with_the_majority_label() -> None:
    config = config_for({"exact_match": ">= 0.8"})
    at_majority = {"prompt": ("prompt", synthetic_run("prompt", {"exact_match": hits(60, 15)}))}
    (gap,) = gaps(at_majority, config)
    (evidence,) = [e for e in gap.evidence if e.code == "at_majority"]
    assert evidence.params["chance"] == 0.25, "four labels in equal shares"
    remedies = [e.code for e in gap.evidence if e.code.startswith("remedy_")]
    assert remedies == ["remedy_labelled_data", "remedy_larger_model"], "no knowledge source for labels"
    above = {"fewshot": ("fewshot", synthetic_run("fewshot", {"exact_match": hits(60, 41)}))}
    assert not [g for g in gaps(above, config) if g.kind == "knowledge"]


def rag_runs(retrieved: Sequence[bool], right: Sequence[bool]) -> dict[str, tuple[str, RunResult]]:
    """prompt answers 4 of 40; rag's items scored item by item for retrieval and the answer."""
    n = len(retrieved)
    rag = synthetic_run(
        "rag",
        {
            "token_f1": [0.9 if ok else 0.1 for ok in right],
            "hit@4": [1.0 if found else 0.0 for found in retrieved],
        },
    )
    prompt = synthetic_run("prompt", {"token_f1": [0.9 if i < 4 else 0.1 for i in range(n)]})
    return {"prompt": ("prompt", prompt), "rag": ("rag", rag)}


def cells(gap: Gap) -> dict[str, Any]:
    table = next(e for e in gap.evidence if e.code == "rag_table")
    return table.params


def test_passages_retrieved_but_answers_wrong_is_a_reading_gap_not_a_knowledge_gap() -> None:
    # 40 items: retrieval finds 32 passages; 14 right (12 of them retrieved); 20 wrong despite the passage.
    retrieved = [True] * 32 + [False] * 8
    right = [True] * 12 + [False] * 20 + [True] * 2 + [False] * 6
    config = config_for({"token_f1": ">= 0.5"})
    found = {g.kind: g for g in gaps(rag_runs(retrieved, right), config)}
    assert "reading" in found and "retrieval" not in found
    assert not any(e.code == "rag_lifts_short" for g in found.values() for e in g.evidence)
    table = cells(found["reading"])
    assert (table["retrieved_right"], table["retrieved_wrong"]) == (12, 20)
    assert (table["missed_right"], table["missed_wrong"]) == (2, 6)
    assert table["retrieved_wrong_examples"] == ["i12", "i13"] and table["right_if"] == ">= 0.5"
    decision = Decision("d", "rc", "now", "not_met", None, gaps=[found["reading"]])
    english = " ".join(explain(decision, "en"))
    assert "reading gap" in english and "finetune+rag" in english and "i12, i13" in english
    assert "阅读差距" in " ".join(explain(decision, "zh"))
    section = render_markdown(decision).split("## RAG misses by cause")[1]
    assert "| rag | retrieved | 12 (e.g. i0, i1) | 20 (e.g. i12, i13) |" in section
    assert "| rag | not retrieved | 2 (e.g. i32, i33) | 6 (e.g. i34, i35) |" in section
    assert "RAG 错误按原因分类" in render_html(dataclasses.replace(decision, language="zh"))


def test_passages_not_retrieved_is_a_retrieval_gap() -> None:
    # retrieval finds 10 passages of 40 and those are answered; 26 wrong answers never saw theirs.
    retrieved = [True] * 10 + [False] * 30
    right = [True] * 8 + [False] * 2 + [True] * 4 + [False] * 26
    config = config_for({"token_f1": ">= 0.5"})
    found = {g.kind: g for g in gaps(rag_runs(retrieved, right), config)}
    assert "retrieval" in found and "reading" not in found
    table = cells(found["retrieval"])
    assert (table["retrieved_wrong"], table["missed_wrong"]) == (2, 26)
    verdict = next(e for e in found["retrieval"].evidence if e.code == "retrieval_gap")
    assert (verdict.params["missed"], verdict.params["wrong"]) == (26, 28)
    english = " ".join(explain(Decision("d", "rc", "now", "not_met", None, gaps=[found["retrieval"]]), "en"))
    assert "retrieval gap" in english and "chunking" in english


def finetuned_decision(state: str, misses: list[Reason] | None = None) -> Decision:
    dev = SuiteScores("dev", None, items=60)
    dev.metrics["exact_match"] = Estimate(
        "exact_match", 0.7, 0.583, 0.817, 60, target="exact_match >= 0.8", threshold=0.8
    )
    test = SuiteScores("test", None, items=60)
    test.metrics["exact_match"] = Estimate("exact_match", 0.767, 0.65, 0.867, 60)
    finetune = RungResult("finetune", "finetune", state=state, misses=misses or [])
    if state == EVALUATED:
        finetune.dev, finetune.test = dev, test
    ready = Readiness(True, examples=540, command="ladder finetune train --name rules-ft")
    return Decision(
        "d",
        "rules",
        "now",
        "not_met",
        None,
        targets=["exact_match >= 0.8"],
        rungs=[finetune],
        readiness=ready,
    )


def test_a_finetune_that_ran_is_never_called_the_next_rung() -> None:
    for lang in ("en", "zh"):
        text = " ".join(explain(finetuned_decision(EVALUATED), lang))
        assert "ladder finetune train" not in text and "0.700 [0.583, 0.817]" in text and "0.767" in text
    english = " ".join(explain(finetuned_decision(EVALUATED), "en"))
    assert "next rung" not in english and "already ran" in english
    missed = Reason("mean_misses", {"metric": "exact_match", "op": ">=", "threshold": 0.8, "mean": 0.7})
    assert "exact_match = 0.700 misses the target >= 0.8" in " ".join(
        explain(finetuned_decision(EVALUATED, [missed]), "en")
    )
    forgot = Reason("forgetting", {"metric": "exact_match", "drop": 0.09, "max_drop": 0.05})
    assert "general data in the training mix" in " ".join(
        explain(finetuned_decision(EVALUATED, [forgot]), "en")
    )
    not_run = " ".join(explain(finetuned_decision("recommended_only"), "en"))
    assert "Fine-tuning is the next rung and the data is ready: ladder finetune train" in not_run


def test_a_reflection_lift_that_fixes_the_label_format_is_a_format_gap_not_reasoning() -> None:
    config = config_for()
    prompt = synthetic_run("prompt", {"exact_match": hits(60, 12)})
    for record in prompt.records[12:30]:
        record.response = f"The category is probably {record.reference}."  # the label, off format
    runs = {
        "prompt": ("prompt", prompt),
        "reflection": ("reflection", synthetic_run("reflection", {"exact_match": hits(60, 30)})),
    }
    found = {g.kind: g for g in gaps(runs, config)}
    assert "reasoning" not in found
    (fix,) = [e for e in found["behaviour"].evidence if e.code == "format_fix_lifts"]
    assert (fix.params["gained"], fix.params["fixed"]) == (18, 18)
    text = " ".join(explain(Decision("d", "r", "now", "not_met", None, gaps=[found["behaviour"]]), "en"))
    assert "format gap" in text and "reasoning gap" not in text


def test_items_needed_is_always_more_than_the_items_used() -> None:
    # The few-shot rung: 0.683 [0.567, 0.800] on 60 items against >= 0.8 was told "about 60".
    assert items_needed(0.683, 0.567, 0.8, 60, 0.8, 0.95) > 60
    for mean, low, high, threshold in [(0.5, 0.3, 0.7, 0.6), (0.75, 0.6, 0.82, 0.8), (0.62, 0.5, 0.74, 0.6)]:
        for n in (10, 40, 200):
            assert items_needed(mean, low, high, n, threshold, 0.95) > n  # type: ignore[operator]
    assert items_needed(0.8, 0.7, 0.9, 60, 0.8, 0.95) is None


def test_a_difference_too_small_to_matter_is_said_so() -> None:
    needed = items_needed(0.795, 0.68, 0.9, 60, 0.8, 0.95)
    params = {"rung": "fewshot", "metric": "exact_match", "mean": 0.795, "low": 0.68, "high": 0.9}
    close = Reason(
        "ci_straddles_close", {**params, "threshold": 0.8, "margin": 0.005, "n": 60, "needed": needed}
    )
    assert close.params["needed"] > 25 * 60
    assert "too small to matter" in say(close, "en") and "无关紧要" in say(close, "zh")


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


@pytest.mark.parametrize(("right", "at_majority"), [(10, True), (28, False)])
def test_a_decision_whose_rungs_are_no_better_than_the_majority_label_says_so(
    right: int, at_majority: bool, settings: Settings, tmp_path: Path
) -> None:
    # 40 dev cases over four labels in equal shares: always answering one label scores 0.25.
    path = write_config(tmp_path, rungs=[rung("prompt"), rung("reflection")])
    fake = CaseFake({"prompt": right, "reflection": right})
    decision = run_decision(load_decision_config(path), settings, backend=fake, store=False)
    assert decision.status == "not_met"
    codes = {r.code for r in decision.reasons}
    evidence = {e.code for g in decision.gaps for e in g.evidence}
    if at_majority:
        assert "beats_no_baseline" in codes and not any(c.startswith("closest") for c in codes)
        assert {"at_majority", "remedy_labelled_data"} <= evidence
        assert "no better than always answering the commonest label" in " ".join(explain(decision, "en"))
    else:
        assert "closest" in codes and "beats_no_baseline" not in codes
        assert "at_majority" not in evidence


def test_rungs_answering_off_format_are_no_evidence_that_the_model_does_not_know(
    settings: Settings, tmp_path: Path
) -> None:
    path = write_config(tmp_path, rungs=[rung("prompt"), rung("reflection")])
    fake = CaseFake({"prompt": 40, "reflection": 40}, off_format={"prompt", "reflection"})
    decision = run_decision(load_decision_config(path), settings, backend=fake, store=False)
    kinds = {g.kind for g in decision.gaps}
    assert "behaviour" in kinds and "knowledge" not in kinds


def test_without_retrieval_scores_rag_falling_short_never_claims_retrieval_works() -> None:
    runs = {
        "prompt": ("prompt", synthetic_run("prompt", {"exact_match": hits(60, 12)})),
        "rag": (
            "rag",
            synthetic_run("rag", {"exact_match": hits(60, 36)}),
        ),  # no hit@k: no reference passages
    }
    found = {g.kind: g for g in gaps(runs, config_for())}
    assert set(found) == {"knowledge"}
    (lift,) = found["knowledge"].evidence
    assert lift.code == "rag_lifts_short"
    text = say(lift, "en")
    assert "retrieval works" not in text and "cannot close from context alone" not in text
    assert "cannot tell whether retrieval or reading" in text


def test_a_target_that_does_not_apply_to_a_rung_does_not_count_against_the_rung_it_applies_to() -> None:
    # rag falls 0.17 short on token_f1 and 0.2 on hit@4 (0.185 on average); prompt, which does
    # not retrieve, falls 0.3 short on token_f1 alone. Summing the shortfalls would name prompt.
    config = config_for({"token_f1": ">= 0.5", "hit@4": ">= 0.8"})
    runs = {
        "prompt": ("prompt", synthetic_run("prompt", {"token_f1": f1([0.2] * 40)})),
        "rag": ("rag", synthetic_run("rag", {"token_f1": f1([0.33] * 40), "hit@4": hits(40, 24)})),
    }
    reason = closest_reason(runs, config)
    assert reason.code == "closest" and reason.params["rung"] == "rag"

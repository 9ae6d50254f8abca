"""The pure part of benchmarks/scenarios.py: a decision read in expected.yaml's terms (the
gap kinds and their match, the next action), on hand-built decisions."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from evaluation.decide.result import (
    EVALUATED,
    MET,
    NOT_MET,
    NOT_RUN,
    RECOMMENDED_ONLY,
    TIE,
    Check,
    Decision,
    Gap,
    Readiness,
    Reason,
    RungResult,
)
from tests.helpers.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scenarios.py"


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    return load_script(SCRIPT, "scenarios_runner")


def chance_gap() -> Gap:
    return Gap(
        "knowledge", [Reason("at_chance", {"rung": "prompt", "chance": 0.25}), Reason("remedy_larger")]
    )


def rungs(finetune_state: str = NOT_RUN) -> list[RungResult]:
    return [
        RungResult("prompt", "prompt", state=EVALUATED),
        RungResult("rag-k4", "rag", state=EVALUATED),
        RungResult("finetune", "finetune", state=finetune_state),
    ]


def ready(*failed: str) -> Readiness:
    names = ("examples", "duplicates", "time_budget", "local_base")
    checks = [Check(n, n not in failed, 0, "rule") for n in names]
    return Readiness(ready=not failed, checks=checks)


def decision(status: str = NOT_MET, recommended: str | None = None, **fields: object) -> Decision:
    values: dict[str, object] = {"rungs": rungs()}
    values.update(fields)
    return Decision("d", "scenario", "now", status, recommended, **values)  # type: ignore[arg-type]


def test_a_knowledge_gap_at_chance_or_majority_is_does_not_know(runner: ModuleType) -> None:
    majority = Gap("knowledge", [Reason("at_majority", {"rung": "prompt"})])
    plain = Gap("knowledge", [Reason("knowledge_gap", {"rung": "rag"})])
    found = decision(gaps=[chance_gap(), majority, plain, Gap("data_too_small")])
    assert runner.gap_kinds(found) == ["does_not_know", "does_not_know", "knowledge", "data_too_small"]
    assert runner.gap_kinds(decision()) == []


def test_expected_null_gap_matches_no_gap_or_a_met_target(runner: ModuleType) -> None:
    assert runner.gap_matches(None, decision())
    assert runner.gap_matches(None, decision(MET, "rag-k4", gaps=[Gap("retrieval")]))
    assert runner.gap_matches(None, decision(TIE, "rag-k4", gaps=[Gap("retrieval")]))
    assert not runner.gap_matches(None, decision(gaps=[Gap("retrieval")]))


def test_an_expected_gap_kind_matches_when_among_those_found(runner: ModuleType) -> None:
    found = decision(gaps=[Gap("behaviour"), chance_gap()])
    assert runner.gap_matches("does_not_know", found)
    assert runner.gap_matches("behaviour", found)
    assert not runner.gap_matches("knowledge", found)  # the at-chance one is does_not_know
    assert not runner.gap_matches(
        "does_not_know", decision(gaps=[Gap("knowledge", [Reason("knowledge_gap")])])
    )
    assert not runner.gap_matches("retrieval", decision())


def test_next_action_deploy_when_met_or_tied(runner: ModuleType) -> None:
    assert runner.next_action(decision(MET, "rag-k4")) == "deploy"
    assert runner.next_action(decision(TIE, "prompt")) == "deploy"
    # Met wins over everything else the decision says.
    assert (
        runner.next_action(decision(MET, "rag-k4", gaps=[chance_gap()], readiness=ready("examples")))
        == "deploy"
    )


def test_next_action_finetune_when_recommended_only_and_ready(runner: ModuleType) -> None:
    only = rungs(RECOMMENDED_ONLY)
    assert runner.next_action(decision(rungs=only, readiness=ready())) == "finetune"
    assert runner.next_action(decision(rungs=only, readiness=ready("time_budget"))) == "finetune"
    # Not ready for another reason, trained already, or no readiness: not "finetune".
    assert runner.next_action(decision(rungs=only, readiness=ready("time_budget", "duplicates"))) == "none"
    assert runner.next_action(decision(rungs=rungs(EVALUATED), readiness=ready())) == "none"
    assert runner.next_action(decision(rungs=only)) == "none"


def test_next_action_for_a_model_that_does_not_know(runner: ModuleType) -> None:
    found = decision(rungs=rungs(RECOMMENDED_ONLY), gaps=[chance_gap()], readiness=ready("examples"))
    assert runner.next_action(found) == "larger_model_or_knowledge_source"
    plain = decision(gaps=[Gap("knowledge", [Reason("knowledge_gap")])])
    assert runner.next_action(plain) == "none"


def test_next_action_more_data(runner: ModuleType) -> None:
    assert runner.next_action(decision(gaps=[Gap("data_too_small")])) == "more_data"
    assert (
        runner.next_action(decision(rungs=rungs(RECOMMENDED_ONLY), readiness=ready("examples")))
        == "more_data"
    )
    assert runner.next_action(decision(readiness=ready("duplicates"))) == "none"


def test_compare_reads_the_recommended_rung_by_strategy_or_label(runner: ModuleType) -> None:
    expected = {"status": "met", "recommended": "rag", "gap": None, "next_action": "deploy"}
    met = decision(MET, "rag-k4", gaps=[Gap("reading")])
    assert runner.compare(expected, met) == dict.fromkeys(
        ("status", "recommended", "gap", "next_action"), True
    )
    assert runner.actual_of(met) == {
        "status": "met",
        "recommended": "rag-k4 (rag)",
        "gap": ["reading"],
        "next_action": "deploy",
    }
    assert runner.compare({**expected, "recommended": "rag-k4"}, met)["recommended"]
    assert not runner.compare({**expected, "recommended": "finetune"}, met)["recommended"]
    missed = decision(gaps=[chance_gap()])
    result = runner.compare(expected, missed)
    assert result == {"status": False, "recommended": False, "gap": False, "next_action": False}
    not_met = {"status": "not_met", "recommended": None, "gap": "does_not_know", "next_action": "none"}
    assert runner.compare(not_met, missed) == {
        "status": True,
        "recommended": True,
        "gap": True,
        "next_action": False,  # an at-chance gap says: larger model or knowledge source
    }

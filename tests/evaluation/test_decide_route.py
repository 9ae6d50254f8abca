"""The route rung in a decision: offered when the fine-tune fails or nearly fails the forgetting
check, measured (routing against the fine-tune, general ability against the base, the router's
accuracy and time per question) and said in words; not offered when forgetting passes clearly.
Scores are scripted (no language model is loaded); the router is real (MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from evaluation.decide import engine
from evaluation.decide.engine import load_decision_config, run_decision
from evaluation.decide.report import render_markdown
from evaluation.decide.result import Decision, Forgetting
from evaluation.decide.route import ROUTE_LABEL, offer_reason
from evaluation.decide.text import explain
from tests.helpers.decide import LABELS, case_text, rung, write_config
from tests.helpers.decide_runs import SyntheticEvaluator, fake_trainer

GENERAL_QUESTIONS = [
    "What is the capital of France?", "How many legs does a spider have?", "What is 7 times 8?",
    "Who wrote Hamlet?", "What colour is the sky on a clear day?", "Translate 'cat' into French.",
    "How many days are in a leap year?", "What is the boiling point of water in Celsius?",
    "Name a prime number above 10.", "What is the largest ocean on Earth?",
]  # fmt: skip


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


def write_case_training(folder: Path, n: int = 80) -> Path:
    """Prepared data whose questions look like the dev cases (the router's in-domain side)."""
    data = folder / "data"
    data.mkdir()
    rows = [
        {"messages": [{"role": "user", "content": case_text("train", i)},
                      {"role": "assistant", "content": LABELS[i % 4]}]}
        for i in range(n)
    ]  # fmt: skip
    (data / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return data


def write_general(folder: Path) -> tuple[Path, Path]:
    """A general suite of 40 plain questions, and the router's general data (other questions)."""
    rows = [
        {"id": f"g{i}", "user_input": f"{GENERAL_QUESTIONS[i % 10]} ({i})", "reference": "x"}
        for i in range(40)
    ]
    (folder / "general.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = {"name": "cases_general", "kind": "qa", "data": "general.jsonl", "metrics": ["exact_match"]}
    (folder / "general.yaml").write_text(json.dumps(spec), encoding="utf-8")
    router_general = folder / "router_general.jsonl"
    texts = [
        "What is the capital of Spain?", "How many wheels does a bicycle have?", "What is 9 plus 6?",
        "Who painted the Mona Lisa?", "What colour are ripe bananas?", "Translate 'dog' into German.",
        "How many hours are in a day?", "At what temperature does water freeze?", "Is 17 a prime number?",
        "Which planet is the largest?", "Spell the word 'library'.", "What is the square root of 49?",
        "Who discovered penicillin?", "How many continents are there?", "What is 12 divided by 4?",
        "Name the longest river in Africa.", "What language is spoken in Brazil?", "What is 5 squared?",
        "Which gas do plants breathe in?", "How many minutes are in an hour?",
    ]  # fmt: skip
    router_general.write_text("\n".join(json.dumps({"instruction": t}) for t in texts), encoding="utf-8")
    return folder / "general.yaml", router_general


def decide(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    model: Path,
    general_right: dict[tuple[str, bool], int],
    route: Any = None,
) -> tuple[Decision, SyntheticEvaluator]:
    speed = {"where": "this machine", "tokens_per_s": 10.0, "hours": 0.1, "source": "a stored run"}
    monkeypatch.setattr(engine, "measured", lambda ready, *args: ready)
    monkeypatch.setattr("evaluation.decide.readiness.estimates", lambda *a, **k: [speed])
    data = write_case_training(tmp_path)
    _, router_general = write_general(tmp_path)
    path = write_config(
        tmp_path,
        model=str(model),
        suites={"dev": "dev.yaml", "test": "test.yaml", "general": "general.yaml"},
        rungs=[rung("prompt"), "finetune"],
        allow_finetune=True,
        search=False,
        learning_curve=False,
        finetune={
            "data": str(data),
            "adapter": "cases-ft",
            "probe_steps": 0,
            "min_examples": 50,
            "min_per_label": 0,
            "try_rag": False,
            "route": route if route is not None else {"k": 3, "general": [str(router_general)]},
        },
    )
    table = {("dev", False): 10, ("dev", True): 39, ("dev:route", True): 40, ("test", True): 39,
             ("test:route", True): 40, **general_right}  # fmt: skip
    evaluator = SyntheticEvaluator(table)
    decision = run_decision(load_decision_config(path), settings, evaluator=evaluator, trainer=fake_trainer)
    return decision, evaluator


def test_a_fine_tune_that_forgets_is_offered_route_which_keeps_the_base_s_general_ability(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    # The fine-tune: 39/40 on dev, but 30/40 on the general suite where the base has 36 (drop 0.15).
    general = {("general", False): 36, ("general", True): 30, ("general:route", True): 36}
    decision, evaluator = decide(tmp_path, settings, monkeypatch, tiny_model_dir, general)
    finetune = decision.rung("finetune")
    assert not finetune.meets and [m.code for m in finetune.misses] == ["forgetting"]
    route = decision.rung(ROUTE_LABEL)
    assert route.strategy == "route" and route.meets and route.model == f"{tiny_model_dir}+cases-ft"
    assert route.config["in_domain"] == [str(tmp_path / "data" / "train.jsonl")] and route.config["k"] == 3
    # The route rung was asked on dev and on the general suite, with the fine-tuned model.
    assert ("general", f"route:{tiny_model_dir}+cases-ft") in evaluator.asked
    # Not a tie with the fine-tune: a rung that forgot is no near miss to fall back to.
    assert decision.status == "met" and decision.recommended == ROUTE_LABEL
    check = decision.route
    assert check is not None and check.offered == "failed"
    assert check.finetune_mean == pytest.approx(39 / 40) and check.route_mean == 1.0
    assert check.within_finetune_ci is True
    assert check.base_mean == pytest.approx(0.9) and check.route_general_mean == pytest.approx(0.9)
    assert check.within_base_ci is True and check.general_drop == pytest.approx(0.0)
    assert check.finetune_general_mean == pytest.approx(0.75)
    router = check.router
    assert router["accuracy_in_domain"] >= 0.9 and router["accuracy_general"] >= 0.9
    assert router["in_domain_items"] == 40 and router["general_items"] == 40
    assert router["calibrated"] and router["validation_balanced_accuracy"] >= 0.9
    assert router["router_ms"] > 0 and router["timed_questions"] == 40
    en = "\n".join(explain(decision, "en"))
    assert "failed the forgetting check, so Ladder tried finetune+route" in en
    assert "within the fine-tune's CI" in en and "within the base's CI" in en and "ms per question" in en
    zh = "\n".join(explain(decision, "zh"))
    assert "路由器" in zh and "毫秒" in zh
    markdown = render_markdown(decision)
    assert "## Division of labour (route)" in markdown and "questions routed one by one" in markdown
    again = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert again.route == decision.route


def test_route_that_forgets_too_misses_and_a_near_fail_offers_it_beside_the_fine_tune(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    # Drop 0.025 of the allowed 0.05: the fine-tune passes (and is recommended), route is measured.
    general = {("general", False): 36, ("general", True): 35, ("general:route", True): 30}
    decision, _ = decide(tmp_path, settings, monkeypatch, tiny_model_dir, general)
    assert decision.forgetting is not None and decision.forgetting.passed
    assert decision.recommended == "finetune"
    check = decision.route
    assert check is not None and check.offered == "near"
    route = decision.rung(ROUTE_LABEL)
    assert not route.meets and any(m.code == "forgetting" for m in route.misses)
    assert check.within_base_ci is False
    assert "nearly failed the forgetting check" in "\n".join(explain(decision, "en"))


@pytest.mark.parametrize("route", [True, False])
def test_not_offered_when_forgetting_passes_clearly_or_route_is_off(
    route: bool, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    # route on: the fine-tune keeps its general ability (no drop), so there is nothing to route around;
    # route off: it forgets, and still no route rung.
    drop = 0 if route else 6
    general = {("general", False): 36, ("general", True): 36 - drop}
    decision, evaluator = decide(tmp_path, settings, monkeypatch, tiny_model_dir, general, route=route)
    assert decision.route is None and all(r.label != ROUTE_LABEL for r in decision.rungs)
    assert not any(name.startswith("route:") for _, name in evaluator.asked)
    assert (decision.recommended == "finetune") is route


def test_offer_reason_and_config_checks(tmp_path: Path) -> None:
    def check(drop: float, passed: bool, max_drop: float = 0.05) -> Forgetting:
        return Forgetting("exact_match", 0.9, 0.9 - drop, drop, max_drop, passed)

    assert offer_reason(check(0.10, False), True) == "failed"
    assert offer_reason(check(0.03, True), True) == "near"
    assert offer_reason(check(0.02, True), True) is None
    assert offer_reason(check(0.0, True, max_drop=0.0), True) is None
    assert offer_reason(check(0.10, False), False) is None
    assert offer_reason(check(0.10, False), {"k": 3}) == "failed"
    path = write_config(tmp_path, finetune={"data": str(tmp_path), "route": {"neighbours": 3}})
    with pytest.raises(ConfigError, match=r"finetune.route: unknown key\(s\) neighbours"):
        load_decision_config(path)
    path = write_config(tmp_path, finetune={"data": str(tmp_path), "route": "yes"})
    with pytest.raises(ConfigError, match=r"finetune\.route must be"):
        load_decision_config(path)

"""The training-time estimate counts the tokens training will see: the chat template, the
split's training share, the general mix, the length cut and the epochs (or max_steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import load_settings
from evaluation.decide.config import DecisionConfig, decision_config_from_dict
from evaluation.decide.readiness import planned_train_tokens
from evaluation.suites.source import SuiteFiles
from finetune.data.clean import TokenCounter
from finetune.data.load import Example, load_file
from finetune.train.config import TrainConfig


def write_pairs(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = [json.dumps({"instruction": q, "output": a}, ensure_ascii=False) for q, a in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config_for(tmp_path: Path, prepare: dict[str, Any], train: dict[str, Any]) -> DecisionConfig:
    raw = write_pairs(
        tmp_path / "raw.jsonl", [(f"Which queue takes ticket {i}?", f"QG-R{i % 8}") for i in range(10)]
    )
    data = {
        "name": "tokens",
        "suites": {"dev": "dev.yaml", "test": "test.yaml"},
        "targets": {"exact_match": ">= 0.8"},
        "allow_finetune": True,
        "finetune": {"raw": [str(raw)], "prepare": prepare, "train": train},
    }
    return decision_config_from_dict(data, tmp_path, "test")


@pytest.fixture
def general(tmp_path: Path) -> Path:
    rows = [("Name a colour of the sky. " * 3, "Blue, on a clear day. " * 3)] * 4
    return write_pairs(tmp_path / "general.jsonl", rows)


def plan(config: DecisionConfig) -> tuple[list[Example], TrainConfig, int]:
    examples = [e for path in config.finetune.raw for e in load_file(path, "auto", SuiteFiles())]
    train = TrainConfig.from_dict(config.finetune.train)
    settings = load_settings()
    return examples, train, planned_train_tokens(config, settings, examples, None, train)


def test_the_template_the_split_and_the_epochs_are_counted(tmp_path: Path) -> None:
    config = config_for(tmp_path, {"general": "none", "split": "0.8,0.2,0"}, {"epochs": 2})
    examples, _, tokens = plan(config)
    counter = TokenCounter()
    templated = sum(counter.count(e) for e in examples)
    assert templated > sum(counter.content(e) for e in examples)  # role markers counted
    assert tokens == int(templated * 0.8 * 2)


def test_the_general_mix_is_counted(tmp_path: Path, general: Path) -> None:
    config = config_for(
        tmp_path, {"general": str(general), "ratio": 2.0, "split": "0.8,0.2,0"}, {"epochs": 1}
    )
    examples, _, tokens = plan(config)
    counter = TokenCounter()
    domain = sum(counter.count(e) for e in examples) * 0.8
    pool = load_file(general, "auto", SuiteFiles())
    # ratio 2 asks for 16 general examples; the set holds 4, so all 4 are mixed in
    assert tokens == int(domain + 4 * counter.count(pool[0]))


def test_the_length_cut_and_max_steps(tmp_path: Path) -> None:
    config = config_for(tmp_path, {"general": "none", "split": "0.8,0.2,0"}, {"epochs": 3, "max_seq_len": 8})
    examples, _, tokens = plan(config)
    assert all(TokenCounter().count(e) > 8 for e in examples)
    assert tokens == int(len(examples) * 0.8 * 8 * 3)  # every example cut to 8 tokens
    config = config_for(tmp_path, {"general": "none"}, {"max_steps": 5, "batch_size": 2, "max_seq_len": 8})
    _, _, tokens = plan(config)
    assert tokens == 5 * 2 * 8  # max_steps batches of 2 examples, 8 tokens each


def test_a_run_estimated_over_the_time_budget_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.decide import readiness as module

    assert module.time_budget({"hours": 0.25}, 30.0).ok  # type: ignore[union-attr]
    over = module.time_budget({"hours": 0.75, "tokens_per_s": 12.5, "source": "probe"}, 30.0)
    assert over is not None and not over.ok and over.value == 45.0 and "finetune.max_minutes" in over.rule
    assert module.time_budget({"hours": 5.0}, None) is None  # no limit
    assert module.time_budget({"hours": None}, 30.0) is None  # no estimate, no verdict on time

    config = config_for(tmp_path, {"general": "none"}, {"epochs": 1})
    config.finetune.min_examples = 1
    examples, _, _ = plan(config)
    base = tmp_path / "base"  # a folder reference is enough: the estimate itself is replaced
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    (base / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(module, "planned_train_tokens", lambda *args: 45_000)
    for hours, ready in ((0.75, False), (0.25, True)):
        monkeypatch.setattr(
            module, "estimates", lambda *args, h=hours: [{"where": "this machine", "hours": h}]
        )
        result = module.readiness(config, load_settings(), examples, 0, str(base), "tokens-ladder")
        budget = next(c for c in result.checks if c.name == "time_budget")
        assert (budget.ok, result.ready) == (ready, ready)
        assert result.command.startswith("ladder finetune train --base")


def test_an_over_budget_fine_tune_is_recommended_with_its_command_not_trained(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.decide import readiness as module
    from evaluation.decide.engine import load_decision_config, run_decision
    from evaluation.decide.text import explain
    from tests.helpers.decide import rung, write_config, write_prepared_data
    from tests.helpers.decide_runs import SyntheticEvaluator

    settings = load_settings()
    data = write_prepared_data(tmp_path)
    path = write_config(
        tmp_path,
        model=str(tiny_model_dir),
        rungs=[rung("prompt"), "finetune"],
        allow_finetune=True,
        finetune={"data": str(data), "adapter": "cases-ft", "max_minutes": 20, "probe_steps": 0},
    )
    speed = {"where": "this machine", "tokens_per_s": 10.0, "hours": 0.75, "source": "a stored run"}
    monkeypatch.setattr(module, "estimates", lambda *args, **kwargs: [speed])

    def trainer(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an over-budget fine-tune must not start")

    evaluator = SyntheticEvaluator({("dev", False): 12, ("test", False): 6})
    decision = run_decision(load_decision_config(path), settings, evaluator=evaluator, trainer=trainer)
    finetune = next(r for r in decision.rungs if r.strategy == "finetune")
    assert finetune.state == "recommended_only" and "max_minutes" in (finetune.note or "")
    assert decision.readiness is not None
    assert [(c.name, c.value) for c in decision.readiness.checks if not c.ok] == [("time_budget", 45.0)]
    text = "\n".join(explain(decision, "en"))
    assert "estimated at 45 min" in text and "finetune.max_minutes (20 min)" in text
    assert decision.readiness.command in text
    assert "预计需要 45 分钟" in "\n".join(explain(decision, "zh"))

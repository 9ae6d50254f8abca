"""The decision procedure with scripted fakes: the stop rule, ties, test confirmation, the
store, resume and cache reuse, and bad input refused before any model call."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from evaluation.decide.engine import exit_code, load_decision_config, run_decision
from evaluation.decide.plan import plan_decision
from evaluation.decide.store import DecisionStore
from evaluation.decide.text import explain
from tests.helpers.decide import CaseFake, case_text, rung, write_config, write_examples


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 8, "threads": 1})


def _decide(path: Path, settings: Settings, fake: CaseFake, **kwargs: object):  # type: ignore[no-untyped-def]
    return run_decision(load_decision_config(path), settings, backend=fake, **kwargs)  # type: ignore[arg-type]


def test_stops_at_the_first_rung_that_meets_and_never_runs_later_rungs(
    settings: Settings, tmp_path: Path
) -> None:
    examples = write_examples(tmp_path)
    path = write_config(
        tmp_path,
        rungs=[
            rung("prompt"),
            rung("fewshot", examples_file=str(examples)),
            rung("reflection", check="labels", labels=["billing", "shipping"]),
        ],
    )
    fake = CaseFake({"prompt": 16, "fewshot": 40})  # test split: fewshot right on all 20
    decision = _decide(path, settings, fake)
    assert decision.status == "met" and decision.recommended == "fewshot" and exit_code(decision) == 0
    states = {r.label: r.state for r in decision.rungs}
    assert states == {"prompt": "evaluated", "fewshot": "evaluated", "reflection": "not_run"}
    assert "reflection" not in fake.tags_called(), "a rung after the first that meets is never asked"
    prompt, fewshot = decision.rung("prompt"), decision.rung("fewshot")
    assert prompt.dev is not None and prompt.dev.metrics["exact_match"].mean == pytest.approx(0.4)
    assert not prompt.meets and prompt.misses[0].code == "mean_misses"
    assert fewshot.meets and fewshot.dev is not None and fewshot.dev.metrics["exact_match"].low == 1.0
    assert fewshot.test is not None and fewshot.test.metrics["exact_match"].mean == 1.0
    assert [r.code for r in decision.reasons][-1] == "test_confirms"
    (pair,) = decision.comparisons
    assert pair.a == "fewshot" and pair.b == "prompt" and pair.test == "McNemar exact" and pair.a_better
    assert decision.gaps == [], "no diagnosis when a cheaper rung meets"


def test_a_later_rung_not_significantly_better_is_a_tie_and_the_cheaper_rung_is_recommended(
    settings: Settings, tmp_path: Path
) -> None:
    examples = write_examples(tmp_path)
    # prompt: 35/40 = 0.875 clears 0.85 on the mean, but its CI does not; fewshot: 40/40 meets.
    # They differ on 5 items only: McNemar p = 2 / 2**5 = 0.0625, not significant at 0.05.
    path = write_config(
        tmp_path,
        targets={"exact_match": ">= 0.85"},
        rungs=[rung("prompt"), rung("fewshot", examples_file=str(examples))],
    )
    decision = _decide(path, settings, CaseFake({"prompt": 35, "fewshot": 40}))
    prompt = decision.rung("prompt")
    assert prompt.dev is not None and prompt.dev.metrics["exact_match"].mean == pytest.approx(0.875)
    assert [m.code for m in prompt.misses] == ["bound_misses"], "only the CI keeps prompt from meeting"
    assert decision.rung("fewshot").meets
    assert decision.status == "tie" and decision.recommended == "prompt" and exit_code(decision) == 0
    tie = next(r for r in decision.reasons if r.code == "tie")
    assert tie.params["winner"] == "fewshot" and tie.params["cheaper"] == "prompt"
    assert tie.params["p"] == pytest.approx(0.0625)
    text = " ".join(explain(decision, "en"))
    assert "does not call a winner" in text and "cheaper prompt" in text
    assert "无法区分" in " ".join(explain(decision, "zh"))


def test_a_significantly_better_later_rung_is_recommended(settings: Settings, tmp_path: Path) -> None:
    examples = write_examples(tmp_path)
    # prompt 33/40 = 0.825 (a near miss); fewshot 40/40: 7 discordant pairs, p = 2 / 2**7 < 0.05.
    path = write_config(tmp_path, rungs=[rung("prompt"), rung("fewshot", examples_file=str(examples))])
    decision = _decide(path, settings, CaseFake({"prompt": 33, "fewshot": 40}))
    assert decision.status == "met" and decision.recommended == "fewshot"
    assert any(r.code == "better_than" and r.params["other"] == "prompt" for r in decision.reasons)


def test_limits_fail_a_rung_and_no_rung_meeting_exits_1(settings: Settings, tmp_path: Path) -> None:
    path = write_config(tmp_path, limits={"max_p95_latency_s": 0.0}, rungs=[rung("prompt")])
    fake = CaseFake({"prompt": 40})
    fake.delay_s = 0.002
    decision = _decide(path, settings, fake)
    prompt = decision.rung("prompt")
    assert [m.code for m in prompt.misses] == ["latency_over"]
    assert decision.status == "not_met" and decision.recommended is None and exit_code(decision) == 1


def test_a_dev_result_the_test_split_contradicts_is_not_confirmed(settings: Settings, tmp_path: Path) -> None:
    path = write_config(tmp_path, n_dev=40, n_test=20, rungs=[rung("prompt")])
    # Right on every dev case, but only on 6 of the 20 test cases.
    fake = CaseFake({"prompt": lambda split, index: split == "dev" or index < 6})
    decision = _decide(path, settings, fake)
    assert decision.rung("prompt").meets
    assert decision.status == "not_confirmed" and exit_code(decision) == 1
    assert decision.reasons[-1].code == "test_misses"


def test_decisions_are_stored_and_a_rerun_calls_no_model(settings: Settings, tmp_path: Path) -> None:
    examples = write_examples(tmp_path)
    path = write_config(tmp_path, rungs=[rung("prompt"), rung("fewshot", examples_file=str(examples))])
    first = _decide(path, settings, CaseFake({"prompt": 10, "fewshot": 40}))
    # prompt on dev, its search (2 other output formats on a 16-item tuning slice; nothing better,
    # so no evaluation on the rest), fewshot on dev, fewshot confirmed on test.
    assert first.model_calls == 40 + 2 * 16 + 40 + 20
    assert first.rung("prompt").search is not None and not first.rung("prompt").search.changed
    again = CaseFake({"prompt": 10, "fewshot": 40})
    second = _decide(path, settings, again)
    assert again.calls == [] and second.model_calls == 0, "every answer comes from the cache"
    assert second.recommended == first.recommended == "fewshot"
    with DecisionStore(settings.db_path) as store:
        rows = store.list_decisions()
        assert [r["decision_id"] for r in rows] == [second.decision_id, first.decision_id]
        loaded = store.load_decision("latest")
    assert loaded.to_dict() == second.to_dict()


def test_an_interrupted_decision_resumes_without_answering_twice(settings: Settings, tmp_path: Path) -> None:
    examples = write_examples(tmp_path)
    path = write_config(
        tmp_path, rungs=[rung("prompt"), rung("fewshot", examples_file=str(examples))], search=False
    )
    crashing = CaseFake({"prompt": 10, "fewshot": 40}, crash_after=40 + 20)
    with pytest.raises(RuntimeError, match="crashed"):
        _decide(path, settings, crashing)
    resumed = CaseFake({"prompt": 10, "fewshot": 40})
    decision = _decide(path, settings, resumed)
    asked = [c[0][-1].content for c in resumed.calls]
    assert "prompt" not in resumed.tags_called(), "the finished rung is not asked again"
    # Batches of 8 were committed before the crash: fewshot's first 16 dev answers are kept.
    assert len([a for a in asked if "Case-dev-" in a]) == 40 - 16
    assert decision.recommended == "fewshot" and decision.status == "met"


def test_default_rungs_skip_what_lacks_inputs_and_are_ordered_by_stated_cost(
    settings: Settings, tmp_path: Path
) -> None:
    examples = write_examples(tmp_path)
    path = write_config(tmp_path, examples=str(examples), order="cost", rungs=None)
    plan = plan_decision(load_decision_config(path), settings)
    order = [p.spec.label for p in plan.rungs]
    larger = "prompt@qwen2.5-coder-1.5b"
    assert order == ["prompt", "fewshot", "reflection", "agent", "rag", larger, "finetune"]
    skipped = next(p for p in plan.rungs if p.spec.label == larger)
    assert skipped.skip is not None and "ladder models pull qwen2.5-coder-1.5b" in skipped.skip, (
        "the larger pack is not installed: the rung says how to let the ladder try it"
    )
    costs = [p.stated_cost for p in plan.rungs if p.stated_cost is not None]
    assert len(costs) == 4 and costs == sorted(costs)
    rag = next(p for p in plan.rungs if p.spec.label == "rag")
    assert rag.skip is not None and "knowledge base" in rag.skip, (
        "a default rung without its inputs is skipped"
    )
    given = [rung("reflection", check="labels", labels=["billing"]), rung("fewshot", k=8), rung("prompt")]
    path = write_config(tmp_path, examples=str(examples), order="cost", rungs=given)
    plan = plan_decision(load_decision_config(path), settings)
    stated = {p.spec.label: p.stated_cost or 0.0 for p in plan.rungs}
    assert [p.spec.label for p in plan.rungs] == sorted(stated, key=stated.__getitem__)
    assert next(p.spec.label for p in plan.rungs) == "prompt", "the given order was reversed"
    path = write_config(tmp_path, order="cost", rungs=[rung("prompt"), {"strategy": "rag"}])
    with pytest.raises(ConfigError, match="rung 'rag': no knowledge base"):
        plan_decision(load_decision_config(path), settings)


# ---- bad input: each refused before any model call ------------------------------------------
def _refused(path: Path, settings: Settings, match: str) -> None:
    fake = CaseFake({"prompt": 40})
    with pytest.raises(ConfigError, match=match):
        _decide(path, settings, fake)
    assert fake.calls == []


def test_a_target_naming_a_metric_the_suite_does_not_produce(settings: Settings, tmp_path: Path) -> None:
    _refused(
        write_config(tmp_path, targets={"faithfulness": ">= 0.85"}), settings, "not a metric of the dev suite"
    )


def test_a_test_split_overlapping_the_dev_split(settings: Settings, tmp_path: Path) -> None:
    path = write_config(tmp_path)
    rows = (tmp_path / "test.jsonl").read_text(encoding="utf-8").splitlines()
    # The same dev question with different case and punctuation is still the same question.
    rows[3] = rows[3].replace(
        case_text("test", 3).split(": ")[1], case_text("dev", 7).split(": ")[1].upper() + "!!"
    )
    rows[3] = rows[3].replace("Case-test-3", "Case-dev-7")
    (tmp_path / "test.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    _refused(path, settings, "test split overlaps the dev split")


def test_an_empty_rung_list(settings: Settings, tmp_path: Path) -> None:
    _refused(write_config(tmp_path, rungs=[]), settings, "rung list is empty")


def test_allow_finetune_without_training_data(settings: Settings, tmp_path: Path) -> None:
    path = write_config(tmp_path, rungs=[rung("prompt"), "finetune"], allow_finetune=True)
    _refused(path, settings, "no training data")


def test_training_data_overlapping_the_test_split(settings: Settings, tmp_path: Path) -> None:
    import json

    raw = tmp_path / "train.jsonl"
    rows = [{"instruction": case_text("test", 2), "output": "shipping"}]
    rows += [{"instruction": f"Train case {i} about {i * 7} parcels", "output": "billing"} for i in range(5)]
    raw.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    path = write_config(tmp_path, rungs=[rung("prompt"), "finetune"], finetune={"raw": [str(raw)]})
    _refused(path, settings, "training data overlaps the test split")


def test_bad_config_values_name_the_key(tmp_path: Path) -> None:
    for values, match in (
        ({"targets": {"exact_match": "about 0.8"}}, "cannot read"),
        ({"confidence": 1.5}, "confidence"),
        ({"rungs": ["prompt", "telepathy"]}, "unknown strategy 'telepathy'"),
        ({"rungs": [{"strategy": "prompt", "model": ""}]}, "must be a model reference"),
        ({"rungs": [{"strategy": "prompt", "model": "a+adapter"}]}, "must be a model reference"),
        ({"rungs": [{"strategy": "finetune", "model": "smollm2-135m"}]}, "finetune takes its settings"),
        ({"limits": {"max_cost_per_1k": -1}}, "limits.max_cost_per_1k"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_decision_config(write_config(tmp_path, **values))


def test_a_decision_name_cannot_leave_the_decisions_folder(settings: Settings, tmp_path: Path) -> None:
    """The name is a folder under LADDER_HOME/decisions that training data is prepared into (with
    force): "../.." would write, and replace, files outside Ladder's home."""
    import json

    raw = tmp_path / "train.jsonl"
    rows = [{"instruction": f"Train case {i} about {i * 7} parcels", "output": "billing"} for i in range(5)]
    raw.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    escape = "../../../escaped"
    for name in (escape, "a/b", "..", ".hidden", "x" * 65, "bad name"):
        path = write_config(
            tmp_path, name=name, rungs=[rung("prompt"), "finetune"], finetune={"raw": [str(raw)]}
        )
        _refused(path, settings, "bad decision name")
    assert not (settings.home / "decisions" / escape).parent.exists()


def test_an_unnamed_decision_is_named_after_its_file_or_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, name=None)
    assert path.name == "decide.yaml" and load_decision_config(path).name == tmp_path.name
    for file, folder, expected in (
        ("tickets.yaml", "x", "tickets"),
        ("decision.yaml", "port_facts", "port_facts"),
        ("config.yaml", "两个 words", "words"),
    ):
        (tmp_path / folder).mkdir(exist_ok=True)
        target = tmp_path / folder / file
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        for suite in ("dev", "test"):
            (tmp_path / folder / f"{suite}.yaml").write_text(
                (tmp_path / f"{suite}.yaml").read_text(encoding="utf-8"), encoding="utf-8"
            )
        assert load_decision_config(target).name == expected


def test_rung_files_are_relative_to_the_config(settings: Settings, tmp_path: Path) -> None:
    write_examples(tmp_path)
    (tmp_path / "strat.yaml").write_text("strategy: fewshot\nk: 2\nexamples_file: examples.jsonl\n", "utf-8")
    path = write_config(
        tmp_path, rungs=[{"name": "mine", "config": "strat.yaml", "system_prompt": "RUNG:mine"}]
    )
    (mine,) = load_decision_config(path).rungs
    assert mine.label == "mine" and mine.strategy == "fewshot" and mine.config["k"] == 2
    assert mine.config["examples_file"] == str(tmp_path / "examples.jsonl")
    decision = _decide(path, settings, CaseFake({"mine": 40}))
    assert decision.recommended == "mine"


def test_the_readme_example_config_is_valid(tmp_path: Path) -> None:
    import yaml

    from evaluation.decide.config import decision_config_from_dict

    readme = (Path(__file__).resolve().parents[2] / "docs" / "decisions.md").read_text(encoding="utf-8")
    block = (
        readme.split("`decide.yaml` (paths are relative to the file):")[1]
        .split("```yaml\n")[1]
        .split("```")[0]
    )
    (tmp_path / "agent.yaml").write_text("strategy: agent\nmax_steps: 3\n", encoding="utf-8")
    config = decision_config_from_dict(yaml.safe_load(block), tmp_path, "README")
    assert [r.label for r in config.rungs] == [
        "prompt",
        "fewshot",
        "reflect-labels",
        "rag",
        "my-agent",
        "prompt@qwen2.5-coder-1.5b",
        "finetune",
    ]
    assert config.search.max_attempts == 6 and config.search.rungs == ["fewshot", "rag"]
    assert config.learning_curve and config.try_larger_model
    assert [str(t) for t in config.targets] == ["exact_match >= 0.8", "unparseable <= 0.05"]
    assert config.finetune.data == tmp_path / "data" / "tickets" and config.finetune.max_forgetting == 0.05
    assert config.max_cost_per_1k == 0.5 and config.confidence == 0.95 and config.rungs[4].strategy == "agent"


def test_a_fine_tune_without_a_recipe_gets_the_decision_defaults_and_keys_set_win(tmp_path: Path) -> None:
    from evaluation.decide.config import DEFAULT_PREPARE, DEFAULT_TRAIN

    bare = load_decision_config(write_config(tmp_path, finetune={"raw": ["train.jsonl"]}))
    assert bare.finetune.prepare == DEFAULT_PREPARE and bare.finetune.train == DEFAULT_TRAIN
    mine = load_decision_config(
        write_config(
            tmp_path, finetune={"raw": ["t.jsonl"], "prepare": {"ratio": 2.0}, "train": {"epochs": 3}}
        )
    )
    assert mine.finetune.prepare == {**DEFAULT_PREPARE, "ratio": 2.0}
    assert mine.finetune.train == {**DEFAULT_TRAIN, "epochs": 3}

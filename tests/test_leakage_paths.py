"""Issue 16, part 1: no test item reaches training by any path, in any of the disguises issue 16
measured. Every path into training (``finetune prepare``, ``finetune synthesize``, ``feedback
promote``, DPO pairs for ``finetune train --method dpo``, a decision's fine-tune rung) is
given each variant of a test question of a suite the test writes itself, and must refuse or
drop it; a different question that shares a phrase, and a templated question with other
numbers, must get through.

The variants: a one-character edit, a reordered clause, a full-width/half-width form, and a
paraphrase generated from the test question (for synthesize, one its teacher wrote; elsewhere,
the one-character paraphrases issue 16 found ``finetune synthesize`` keeping).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend
from assistant.feedback import LeakageRefused, promote, record_feedback
from assistant.leakage import EvalQuestion, QuestionIndex
from assistant.settings import Settings, load_settings
from assistant.types import Message
from evaluation.suites.source import SuiteFiles
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

SUITES = SuiteFiles()
TEST_QUESTION = "员工入职满 5 年后，每年可以休多少天带薪年假？"
MEMBER_QUESTION = "近 12 个月累计消费满多少元可以升为青禾会员？"
TEMPLATED = "4 × 8 等于多少？只回答数字。"
VARIANTS = {
    "one-character edit": "员工入职满 5 年后，每年可以休多少天带新年假？",  # 薪 -> 新
    "reordered clause": "每年可以休多少天带薪年假，员工入职满 5 年后？",
    "full/half width": "员工入职满５年后,每年可以休多少天带薪年假?",  # a full-width 5, ASCII punctuation
    # What `finetune synthesize --paraphrase 1` kept in issue 16: one character inserted.
    "paraphrase of a test question": "近 12 个月累计消费满多少元可以升成为青禾会员？",
}
NEGATIVES = {
    "a short question sharing a phrase": "入职满 5 年后每年可以报销多少元交通费？",
    "a templated question with other numbers": "2 × 8 等于多少？只回答数字。",
}


def write_suite(folder: Path, name: str = "held") -> Path:
    rows = [
        {"id": "held-1", "user_input": TEST_QUESTION, "reference": "15 天"},
        {"id": "held-2", "user_input": MEMBER_QUESTION, "reference": "2400"},
        {"id": "held-3", "user_input": TEMPLATED, "reference": "32"},
    ]
    (folder / f"{name}.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nkind: qa\ndata: {name}.jsonl\n", encoding="utf-8")
    return path


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"threads": 1})


def test_the_shared_check_on_every_variant_and_negative() -> None:
    index = QuestionIndex(
        [EvalQuestion("held", "held-1", TEST_QUESTION), EvalQuestion("held", "held-2", MEMBER_QUESTION),
         EvalQuestion("held", "held-3", TEMPLATED)]
    )  # fmt: skip
    for name, text in VARIANTS.items():
        assert index.find([text]) is not None, name
    for name, text in NEGATIVES.items():
        assert index.find([text]) is None, name
    # The second issue-16 paraphrase, and the English forms: a typo, an added word, word order.
    qa06 = QuestionIndex([EvalQuestion("demo_qa", "qa-06", "未休完的年假最多可以结转多少天？")])
    assert qa06.find(["未休完年的年假最多可以结转多少天？"]) is not None
    english = QuestionIndex(
        [EvalQuestion("s", "1", "Within how many days of delivery can a customer return a product?")]
    )
    for text in ("Within how many days of delivery can a custmer return a product?",
                 "Please, within how many days of delivery can a customer return a product?",
                 "Can a customer return a product within how many days of delivery?"):  # fmt: skip
        assert english.find([text]) is not None, text
    assert english.find(["Within how many days of delivery can a customer exchange a product?"]) is not None
    assert english.find(["How many days does delivery take to the islands?"]) is None


# ---- finetune prepare ---------------------------------------------------------------------------
def _prepared_leaks(
    tmp_path: Path, settings: Settings, rows: list[dict[str, object]]
) -> list[dict[str, Any]]:
    """``prepare`` of ``rows`` (Alpaca) with the test's suite checked: what it dropped as leaks."""
    from finetune.data.prepare import PrepareConfig, prepare
    from finetune.data.split import SplitFractions

    domain = tmp_path / "domain.jsonl"
    domain.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = PrepareConfig(
        domain=(domain,), out=tmp_path / "out", general="none", ratio=0, min_examples=1,
        split=SplitFractions(1.0, 0.0, 0.0), suites=(write_suite(tmp_path),), project_suites=False,
    )  # fmt: skip
    return prepare(config, settings, suites=SUITES).report.leaks


def _prepare(tmp_path: Path, settings: Settings, questions: Sequence[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, object]] = [{"instruction": q, "output": "答案"} for q in questions]
    return _prepared_leaks(
        tmp_path, settings, [*rows, {"instruction": "公司食堂每天几点开门？", "output": "七点"}]
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_prepare_drops_each_variant(variant: str, tmp_path: Path, settings: Settings) -> None:
    leaks = _prepare(tmp_path, settings, [VARIANTS[variant]])
    assert [(leak["source"], leak["suite"]) for leak in leaks] == [(f"{tmp_path / 'domain.jsonl'}:1", "held")]


def test_prepare_keeps_the_negatives(tmp_path: Path, settings: Settings) -> None:
    assert _prepare(tmp_path, settings, list(NEGATIVES.values())) == []


def test_prepare_drops_the_paraphrases_of_a_leaking_synthetic_question(
    tmp_path: Path, settings: Settings
) -> None:
    """A synthesized file carries its groups (``from:`` tags): prepare drops a whole group."""
    from finetune.data.dedup import group_tag

    tag = group_tag(TEST_QUESTION)
    rows: list[dict[str, object]] = [
        {"instruction": TEST_QUESTION, "output": "15 天", "tags": ["synthetic", tag]},
        {
            "instruction": "工作满五年的员工一年能请几天带薪假？",
            "output": "15 天",
            "tags": ["synthetic", "paraphrase", tag],
        },
        {"instruction": "公司食堂每天几点开门？", "output": "七点", "tags": ["synthetic", group_tag("食堂")]},
    ]
    leaks = _prepared_leaks(tmp_path, settings, rows)
    assert [(leak["source"].rsplit(":", 1)[1], leak["match"]) for leak in leaks] == [
        ("1", "exact"),
        ("2", "group"),
    ]
    assert leaks[1]["via"] == f"{tmp_path / 'domain.jsonl'}:1" and leaks[1]["item"] == "held-1"


# ---- finetune synthesize ------------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    where: str = "handbook.md#1"


@dataclass(frozen=True)
class Pair:
    id: str
    question: str
    answer: str = "15 天"
    kind: str = "single_hop"
    lang: str = "zh"
    chunks: tuple[Chunk, ...] = (Chunk(),)


@dataclass
class Generated:
    items: list[Pair] = field(default_factory=list)
    calls: int = 0


@dataclass(frozen=True)
class KB:
    name: str = "handbook"


def _synthesize(
    tmp_path: Path, pairs: list[Pair], paraphrases: dict[str, str]
) -> tuple[list[str], list[dict[str, object]]]:
    """``synthesize`` with a scripted generator and a teacher that rephrases by a table."""
    from finetune.data.synth import SynthConfig, synthesize

    def teacher(conversation: list[Message]) -> str:
        asked = conversation[-1].content.rsplit("问题：", 1)[-1].strip()
        return paraphrases[asked]

    report = synthesize(
        KB(),  # type: ignore[arg-type]
        FakeBackend(default=teacher),
        SynthConfig(paraphrase=1, suites=(write_suite(tmp_path),), project_suites=False),
        generate=lambda progress: Generated(pairs, len(pairs)),
        suites=SUITES,
    )
    return [str(row["instruction"]) for row in report.rows], report.leaks


CANTEEN = Pair("synth-9", "公司食堂每天早上几点开门？", "七点")
CANTEEN_REWORDED = "食堂早上是从几点开始营业的？"


@pytest.mark.parametrize("variant", VARIANTS)
def test_synthesize_drops_each_variant_with_its_paraphrases(variant: str, tmp_path: Path) -> None:
    question = VARIANTS[variant]
    reworded = "工作满 5 年以后，员工一年能休几天带薪的年假？" if "年假" in question else \
        "一年内消费累计多少元，才能成为青禾会员，按近 12 个月算？"  # fmt: skip
    if "５" in question:  # a paraphrase keeps the original's numbers as written
        reworded = reworded.replace("5", "５")
    rows, leaks = _synthesize(
        tmp_path,
        [Pair("synth-1", VARIANTS[variant]), CANTEEN],
        {VARIANTS[variant]: reworded, CANTEEN.question: CANTEEN_REWORDED},
    )
    assert rows == [CANTEEN.question, CANTEEN_REWORDED]
    assert [leak["match"] for leak in leaks] in (["near", "group"], ["exact", "group"])


def test_synthesize_drops_a_question_whose_paraphrase_is_a_test_item(tmp_path: Path) -> None:
    """The other way round: the teacher's paraphrase repeats a test question, so the question it
    was made from goes too."""
    original = "员工工作满 5 年以后，一年能休几天带薪年假？"
    rows, leaks = _synthesize(
        tmp_path,
        [Pair("synth-1", original), CANTEEN],
        {original: TEST_QUESTION, CANTEEN.question: CANTEEN_REWORDED},
    )
    assert rows == [CANTEEN.question, CANTEEN_REWORDED]
    assert [(leak["match"], leak["item"]) for leak in leaks] == [("group", "held-1"), ("exact", "held-1")]


def test_synthesize_keeps_the_negatives(tmp_path: Path) -> None:
    pairs = [Pair(f"synth-{i}", text) for i, text in enumerate(NEGATIVES.values())]
    reworded = {pairs[0].question: "工作满 5 年后，每年能报销多少元的交通费用？",
                pairs[1].question: "请计算 2 × 8，结果是多少？"}  # fmt: skip
    rows, leaks = _synthesize(tmp_path, pairs, reworded)
    assert leaks == [] and len(rows) == 4


# ---- feedback promote ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["sft", "pairs", "train"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_promote_refuses_each_variant(variant: str, target: str, tmp_path: Path, settings: Settings) -> None:
    item = record_feedback(
        settings, question=VARIANTS[variant], answer="10 天", rating="down", correction="15 天"
    )
    with pytest.raises(LeakageRefused, match=r"item held-\d of the evaluation suite held"):
        promote(settings, item.id, target, suites=SUITES, check_suites=(write_suite(tmp_path),))
    assert not (settings.home / "feedback").exists()


def test_promote_refuses_a_shipped_test_item_by_default(settings: Settings) -> None:
    """Issue 16: `ladder feedback promote N --to train` wrote demo_qa qa-01 into training data."""
    question = "Within how many days of delivery can a customer return a product for a full refund?"
    item = record_feedback(
        settings, question=question.upper(), answer="7 days", rating="down", correction="30 days"
    )
    with pytest.raises(LeakageRefused, match="is item qa-01 of the evaluation suite demo_qa"):
        promote(settings, item.id, "train", suites=SUITES)
    with pytest.raises(TypeError, match="suites=SuiteFiles"):
        promote(settings, item.id, "sft")


def test_promote_checks_the_suites_feedback_went_to(tmp_path: Path, settings: Settings) -> None:
    first = record_feedback(
        settings, question=TEST_QUESTION, answer="10 天", rating="down", correction="15 天"
    )
    promote(settings, first.id, "suite", path=tmp_path / "fb.yaml", suites=SUITES)
    edited = record_feedback(settings, question=VARIANTS["one-character edit"], answer="10 天", rating="up")
    with pytest.raises(LeakageRefused, match="evaluation suite fb"):
        promote(settings, edited.id, "sft", suites=SUITES)


def test_promote_keeps_the_negatives(tmp_path: Path, settings: Settings) -> None:
    for text in NEGATIVES.values():
        item = record_feedback(settings, question=text, answer="?", rating="down", correction="!")
        done = promote(settings, item.id, "train", suites=SUITES, check_suites=(write_suite(tmp_path),))
        assert [p.target for p in done] == ["sft", "pairs"]


def test_cli_promote_names_suite_and_item_and_exits_2(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path)
    item = record_feedback(settings, question=VARIANTS["reordered clause"], answer="10 天", rating="up")
    code, _, err = run(["feedback", "promote", str(item.id), "--to", "train", "--suite", str(suite)], capsys)
    assert code == 2 and "item held-1 of the evaluation suite held" in err and "hint:" in err
    assert not (settings.home / "feedback" / "feedback_sft.jsonl").exists()
    code, out, err = run(["feedback", "promote", str(item.id), "--to", "train"], capsys)
    assert "to sft (train side)" in out
    assert code == 0, err  # without --suite, the shipped suites alone: no match


# ---- DPO pairs ----------------------------------------------------------------------------------
def write_pairs(folder: Path, questions: Sequence[str]) -> Path:
    rows = [
        {"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": "15 天"}],
         "rejected": [{"role": "assistant", "content": "10 天"}]}
        for q in questions
    ]  # fmt: skip
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("variant", VARIANTS)
def test_dpo_pairs_drop_each_variant(variant: str, tmp_path: Path) -> None:
    from finetune.data.preference import checked_pairs

    pairs = write_pairs(tmp_path, [VARIANTS[variant], "公司食堂每天几点开门？", *NEGATIVES.values()])
    checked = checked_pairs(pairs, 1, SUITES, [write_suite(tmp_path)])
    assert [p.prompt[0]["content"] for p in checked.pairs] == ["公司食堂每天几点开门？", *NEGATIVES.values()]
    assert [(leak["source"], leak["suite"]) for leak in checked.leaks] == [(f"{pairs}:1", "held")]
    assert checked.in_file == 4 and "held" in checked.suites and "demo_qa" in checked.suites


def test_dpo_refuses_when_every_pair_leaks(tmp_path: Path) -> None:
    from finetune.data.errors import TrainDataError
    from finetune.data.preference import checked_pairs

    pairs = write_pairs(tmp_path, list(VARIANTS.values()))
    with pytest.raises(TrainDataError, match=r"all 4 preference pair\(s\) repeat evaluation questions"):
        checked_pairs(pairs, 1, SUITES, [write_suite(tmp_path)])
    with pytest.raises(TrainDataError, match=r"2 preference pair\(s\) after dropping 1 that repeat"):
        checked_pairs(
            write_pairs(tmp_path, [TEST_QUESTION, *NEGATIVES.values()]), 3, SUITES, [write_suite(tmp_path)]
        )


def test_cli_dpo_refuses_pairs_that_all_leak_with_exit_2(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16: `finetune train --method dpo` trained on a shipped test item without a word."""
    shipped = "Within how many days of delivery can a customer return a product for a full refund?"
    pairs = write_pairs(tmp_path, [shipped])
    args = ["finetune", "train", "--method", "dpo", "--base", str(tiny_model_dir), "--name", "p",
            "--data", str(pairs), "--min-examples", "1", "--threads", "1"]  # fmt: skip
    code, _, err = run(args, capsys)
    assert code == 2 and "repeat evaluation questions" in err and "demo_qa qa-01" in err
    pairs = write_pairs(tmp_path, [VARIANTS["full/half width"]])
    code, _, err = run([*args, "--suite", str(write_suite(tmp_path))], capsys)
    assert code == 2 and "held held-1" in err
    pairs = write_pairs(
        tmp_path, [VARIANTS["reordered clause"], "公司食堂每天几点开门？", *NEGATIVES.values()]
    )
    trained = [*args, "--suite", str(write_suite(tmp_path)), "--max-steps", "1", "--batch-size", "2"]
    code, out, err = run(trained, capsys)
    assert code == 0, err
    assert "dropped 1 of 4 pair(s)" in out and f"{pairs}:1: near match of held item held-1" in out, out


@pytest.mark.parametrize("variant", VARIANTS)
def test_cli_sft_training_refuses_data_with_each_variant(
    variant: str, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSONL file trained as it is skips prepare: `finetune train` checks it itself."""
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "15 天"}]}
            for q in [VARIANTS[variant], "公司食堂每天几点开门？", *NEGATIVES.values()]]  # fmt: skip
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    args = ["finetune", "train", "--base", str(tiny_model_dir), "--name", "s", "--data", str(data),
            "--min-examples", "1", "--threads", "1", "--suite", str(write_suite(tmp_path))]  # fmt: skip
    code, _, err = run(args, capsys)
    assert code == 2 and f"{data}:1 ~ held held-" in err and "repeat evaluation questions" in err, err


# ---- a decision's fine-tune rung ----------------------------------------------------------------
def _decision(tmp_path: Path, training: Sequence[str]) -> Path:
    from tests.helpers.decide import rung, write_config

    raw = tmp_path / "train.jsonl"
    rows = [{"instruction": q, "output": "15 天"} for q in training]
    rows += [{"instruction": f"Train case {i} about {i * 7} parcels", "output": "billing"} for i in range(5)]
    raw.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    path = write_config(tmp_path, rungs=[rung("prompt"), "finetune"], finetune={"raw": [str(raw)]})
    test_rows = (tmp_path / "test.jsonl").read_text(encoding="utf-8")
    extra = [{"id": "held-1", "user_input": TEST_QUESTION, "reference": "15 天"},
             {"id": "held-2", "user_input": MEMBER_QUESTION, "reference": "2400"},
             {"id": "held-3", "user_input": TEMPLATED, "reference": "32"}]  # fmt: skip
    (tmp_path / "test.jsonl").write_text(
        test_rows + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in extra), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_decision_refuses_training_data_with_each_variant(
    variant: str, tmp_path: Path, settings: Settings
) -> None:
    from assistant.errors import ConfigError
    from evaluation.decide.engine import load_decision_config
    from evaluation.decide.plan import plan_decision

    path = _decision(tmp_path, [VARIANTS[variant]])
    with pytest.raises(ConfigError, match=r"training data overlaps the test split.*cases_test held-\d"):
        plan_decision(load_decision_config(path), settings)


def test_a_decision_refuses_training_data_that_repeats_a_shipped_suite(
    tmp_path: Path, settings: Settings
) -> None:
    from assistant.errors import ConfigError
    from evaluation.decide.engine import load_decision_config
    from evaluation.decide.plan import plan_decision

    path = _decision(tmp_path, ["未休完年的年假最多可以结转多少天？"])  # demo_qa qa-06, one character added
    with pytest.raises(ConfigError, match=r"overlaps a suite Ladder ships.*demo_qa qa-06, near"):
        plan_decision(load_decision_config(path), settings)


def test_a_decision_plans_with_the_negatives(tmp_path: Path, settings: Settings) -> None:
    from evaluation.decide.engine import load_decision_config
    from evaluation.decide.plan import plan_decision

    plan = plan_decision(load_decision_config(_decision(tmp_path, list(NEGATIVES.values()))), settings)
    assert len(plan.training) == 7 and plan.dev_leaks == 0


def test_the_cli_names_the_member_of_a_group_that_matched() -> None:
    from ui.cli.finetune.data import leak_text

    group = {"source": "syn.jsonl:2", "suite": "held", "item": "held-1", "match": "group", "similarity": 1.0,
             "via": "syn.jsonl:1"}  # fmt: skip
    assert leak_text(group) == "syn.jsonl:2: same question as syn.jsonl:1, which matches held item held-1"
    near = {**group, "match": "near", "similarity": 0.93}
    assert leak_text(near) == "syn.jsonl:2: near match of held item held-1 (0.93)"


def test_a_decision_prepares_again_data_prepared_under_another_leakage_rule(
    tmp_path: Path, settings: Settings
) -> None:
    """Prepared data is reused while inputs and settings match; the leakage rule is a setting, so
    data prepared before this check (or under a looser rule) is checked again, not reused."""
    from assistant.leakage import RULE
    from assistant.progress import RecordingProgress
    from evaluation.decide.engine import load_decision_config
    from evaluation.decide.training import prepared_data

    config = load_decision_config(_decision(tmp_path, list(NEGATIVES.values())))
    config.finetune.prepare = {"general": "none", "ratio": 0, "min_examples": 1, "split": "1,0,0"}

    def notes() -> list[str]:
        progress = RecordingProgress()
        out = prepared_data(config, settings, progress)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["settings"]["leakage_rule"] == RULE
        return [str(value).split(" ", 1)[0] for kind, value in progress.events if kind == "note"]

    assert notes() == ["preparing"]
    assert notes() == ["reusing"]
    manifest_file = settings.home / "decisions" / config.name / "data" / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    del manifest["settings"]["leakage_rule"]  # as a prepare before this check wrote it
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    assert notes() == ["preparing"]

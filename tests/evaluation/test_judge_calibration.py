"""The judge check: the labelled set, the agreement measure, the stored checks, the decision gate
and ``ladder judge``. The strong and weak judges are scripted (``tests.helpers.oracle_judge``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.progress import RecordingProgress
from assistant.settings import Settings
from evaluation.calibration.agreement import agreement
from evaluation.calibration.check import JUDGED_METRICS, check_judge
from evaluation.calibration.data import default_set_path, load_set
from evaluation.calibration.gate import check_judged_targets
from evaluation.calibration.store import judge_file, judges_dir, save, stored_agreement
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.helpers.oracle_judge import OracleJudge
from tests.helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


# ---- the labelled set ----------------------------------------------------------------------------
def test_the_shipped_set_is_what_its_build_script_writes() -> None:
    build = load_script(ROOT / "datasets" / "judge" / "build.py", "judge_build")
    assert build.render(build.build()) == default_set_path().read_text(encoding="utf-8")


def test_the_shipped_set_covers_both_languages_and_every_verdict() -> None:
    labelled = load_set()
    langs = [i.lang for i in labelled.items]
    assert langs.count("zh") >= 20 and langs.count("en") >= 20
    assert set(labelled.metrics()) == set(JUDGED_METRICS)
    for metric in JUDGED_METRICS:
        values = {i.labels[metric] for i in labelled.labelled(metric)}
        assert {0.0, 1.0} <= values, metric  # each metric sees both ends
    # faithfulness and correctness disagree where they should: right but unsupported, and the reverse
    assert any(i.labels["faithfulness"] == 0 and i.labels["answer_correctness"] == 1 for i in labelled.items)
    assert any(i.labels["faithfulness"] == 1 and i.labels["answer_relevancy"] == 0 for i in labelled.items)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"id": "a", "user_input": "q", "labels": {"faithfulness": 2}}', "not a number in [0, 1]"),
        ('{"id": "a", "user_input": "q", "labels": {}}', "`labels` must map"),
        ('{"user_input": "q", "labels": {"faithfulness": 1}}', "needs an `id`"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "ok", "user_input": "q", "labels": {"faithfulness": 1}}\n' + line + "\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"set\.jsonl:2") as caught:
        load_set(path)
    assert message in str(caught.value)


def test_a_duplicate_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    row = '{"id": "a", "user_input": "q", "labels": {"faithfulness": 1}}\n'
    path.write_text(row * 2, encoding="utf-8")
    with pytest.raises(ConfigError, match="appears twice"):
        load_set(path)


# ---- agreement --------------------------------------------------------------------------------------
def test_agreement_is_pairwise_concordance() -> None:
    labels = [0.0, 0.5, 1.0, 1.0]
    assert agreement(labels, [0.1, 0.4, 0.9, 0.8]).concordance == 1.0
    assert agreement(labels, [0.9, 0.5, 0.1, 0.2]).concordance == 0.0
    # five differently-labelled pairs; a constant judge ties them all
    flat = agreement(labels, [0.5, 0.5, 0.5, 0.5])
    assert flat.pairs == 5 and flat.concordance == 0.5
    # one pair ordered wrongly of five
    assert agreement(labels, [0.6, 0.4, 0.9, 0.8]).concordance == pytest.approx(4 / 5)


def test_a_failed_item_costs_agreement_and_is_counted() -> None:
    labels = [0.0, 1.0, 0.0, 1.0]
    full = agreement(labels, [0.0, 1.0, 0.0, 1.0])
    failed = agreement(labels, [0.0, 1.0, None, None])
    assert full.concordance == 1.0 and failed.failed == 2
    assert failed.concordance is not None and 0.5 < failed.concordance < 1.0
    assert failed.mae == 0.0  # over the scored items only


def test_agreement_interval_is_seeded_and_brackets_the_value() -> None:
    labels = [float(i % 3) / 2 for i in range(30)]
    scores = [v if i % 4 else 1 - v for i, v in enumerate(labels)]
    a, b = agreement(labels, scores), agreement(labels, scores)
    assert (a.low, a.high) == (b.low, b.high)
    assert a.low is not None and a.high is not None and a.concordance is not None
    assert a.low <= a.concordance <= a.high


def test_no_differently_labelled_pair_gives_no_value() -> None:
    result = agreement([1.0, 1.0], [0.2, 0.9])
    assert result.concordance is None and result.pairs == 0


# ---- checking judges ------------------------------------------------------------------------------
def test_a_judge_that_answers_like_the_person_agrees_fully() -> None:
    labelled = load_set()
    progress = RecordingProgress()
    result = check_judge("oracle", OracleJudge(labelled), labelled, progress=progress)
    assert set(result.metrics) == set(JUDGED_METRICS)
    for name, measured in result.metrics.items():
        assert measured.agreement.concordance == 1.0, name
        assert measured.agreement.failed == 0
    assert result.judge_calls > 0
    assert "judging faithfulness" in progress.stages
    by_lang = result.metrics["faithfulness"].by_lang
    assert set(by_lang) == {"en", "zh"} and all(a.concordance == 1.0 for a in by_lang.values())
    assert by_lang["zh"].n + by_lang["en"].n == result.metrics["faithfulness"].agreement.n


def test_a_coin_flipping_judge_does_not() -> None:
    labelled = load_set()
    result = check_judge("coin", OracleJudge(labelled, noise=1.0), labelled)
    for name, measured in result.metrics.items():
        a = measured.agreement
        assert a.concordance is not None and a.concordance < 0.7, name
        assert a.low is not None and a.low < 0.5 < (a.high or 0), name  # indistinguishable from a coin


def test_context_metrics_judge_each_distinct_input_once() -> None:
    labelled = load_set()
    judge = OracleJudge(labelled)
    check_judge("oracle", judge, labelled, ["context_recall"])
    distinct = {
        (i.sample["user_input"], tuple(i.sample["retrieved_contexts"]), i.sample["reference"])
        for i in labelled.labelled("context_recall")
    }
    assert judge.usage.calls == len(distinct) < len(labelled.labelled("context_recall"))


# ---- the store ------------------------------------------------------------------------------------
def test_checks_are_stored_per_judge_and_merged(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    labelled = load_set()
    save(settings, check_judge("oracle", OracleJudge(labelled), labelled, ["faithfulness"]))
    save(settings, check_judge("oracle", OracleJudge(labelled, noise=1.0), labelled, ["answer_relevancy"]))
    faith = stored_agreement(settings, "oracle", "faithfulness", labelled.sha256)
    relevancy = stored_agreement(settings, "oracle", "answer_relevancy", labelled.sha256)
    assert faith is not None and faith.concordance == 1.0
    assert relevancy is not None and relevancy.concordance is not None and relevancy.concordance < 0.7
    assert stored_agreement(settings, "oracle", "context_recall") is None
    # measured on another version of the set: not used
    assert stored_agreement(settings, "oracle", "faithfulness", "0" * 64) is None
    assert "n=" in faith.describe()


@pytest.mark.parametrize(
    "ref", ["../../etc/passwd", "openai:m@http://10.0.0.1:8000/v1", "/abs/model", "..", ""]
)
def test_a_hostile_judge_reference_cannot_steer_the_file_name(tmp_path: Path, ref: str) -> None:
    settings = Settings(home=tmp_path)
    path = judge_file(settings, ref)
    assert path.parent == judges_dir(settings)
    assert path.name.endswith(".json") and "/" not in path.name and not path.name.startswith(".")


# ---- the decision gate ----------------------------------------------------------------------------
def test_the_gate_passes_an_agreeing_judge_and_checks_it_when_never_checked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    labelled = load_set()
    built: list[OracleJudge] = []

    def factory() -> OracleJudge:
        built.append(OracleJudge(labelled))
        return built[-1]

    progress = RecordingProgress()
    [result] = check_judged_targets(
        settings, "oracle", ["faithfulness"], judge_factory=factory, progress=progress
    )
    assert result.ok and result.measured_now and len(built) == 1
    assert any(kind == "note" and "checking the judge oracle" in str(v) for kind, v in progress.events)
    # the second time it is read from the store: no judge is built
    [again] = check_judged_targets(settings, "oracle", ["faithfulness"], judge_factory=factory)
    assert again.ok and not again.measured_now and len(built) == 1


def test_the_gate_refuses_a_judge_that_agrees_too_little(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    labelled = load_set()
    with pytest.raises(ConfigError) as caught:
        check_judged_targets(
            settings, "coin", ["faithfulness"], judge_factory=lambda: OracleJudge(labelled, noise=1.0)
        )
    text = str(caught.value)
    assert "agrees too little" in text and "faithfulness: agreement 0." in text and "0.70" in text
    assert "stronger judge" in text and "lexical metric" in text
    # a lower bar is the user's call
    [result] = check_judged_targets(settings, "coin", ["faithfulness"], bar=0.3)
    assert result.ok


def test_the_gate_without_a_way_to_build_the_judge_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="never checked") as caught:
        check_judged_targets(Settings(home=tmp_path), "some-judge", ["faithfulness"])
    assert "ladder judge check --judge some-judge" in str(caught.value)


# ---- the CLI -----------------------------------------------------------------------------------------
def test_judge_check_cli_stores_and_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "judge.json"
    # a judge whose every reply is unusable: each item is n/a, which costs agreement
    script.write_text(json.dumps({"default": "I would rather not say."}), encoding="utf-8")
    home = tmp_path / "home"
    code, out, err = run(
        ["judge", "check", "--judge", f"fake:{script}", "--metric", "context_recall", "--home", str(home)],
        capsys,
    )
    assert code == 0, err
    assert "context_recall" in out and "0.50" in out and "too low" in out and "stored in" in out
    assert "context_recall by language: en 0.50" in out and "zh 0.50" in out
    code, out, err = run(["judge", "list", "--home", str(home)], capsys)
    assert code == 0, err
    assert "context_recall" in out and "0.50" in out


def test_judge_list_with_nothing_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["judge", "list", "--home", str(tmp_path)], capsys)
    assert code == 0 and "no judge checked yet" in out


# ---- reports ------------------------------------------------------------------------------------------
def test_reports_show_the_judges_agreement_beside_judged_scores(isolated_home: Path, tmp_path: Path) -> None:
    from assistant.backends.fake import FakeBackend
    from assistant.settings import load_settings
    from evaluation.calibration.agreement import Agreement
    from evaluation.calibration.check import JudgeCheck, MetricCheck
    from evaluation.metrics.judge import Judge
    from evaluation.report import render_html, render_markdown
    from evaluation.runner import EvalPlan, Runner
    from evaluation.store import RunStore
    from tests.helpers.judged import METRIC, statements, verdicts, write_judged_suite

    settings = load_settings()
    suite = write_judged_suite(tmp_path, items=2)
    replies = [statements("s1"), verdicts(1)] * 4

    def evaluate() -> object:
        judge = Judge(FakeBackend(list(replies), model_id="fake-judge"))
        return Runner(settings, RunStore(settings.db_path), backend=FakeBackend(), judge=judge).run(
            EvalPlan(suite, judge="judge-ref", use_cache=False)
        )

    first = evaluate()
    md = render_markdown(first)  # type: ignore[arg-type]
    assert "judge not checked (ladder judge check --judge judge-ref)" in md
    assert f"{METRIC} · judge not checked" in md

    labelled = load_set()
    weak = Agreement(0.55, 0.41, 0.69, 46, 3, 700, 0.4)
    when = "2026-12-06T07:00:00+00:00"
    check = JudgeCheck(
        "judge-ref", "fake-judge", labelled.name, labelled.sha256, when, {METRIC: MetricCheck(METRIC, weak)}
    )
    save(settings, check)
    second = evaluate()
    md = render_markdown(second)  # type: ignore[arg-type]
    assert "judge agreement 0.55 [0.41, 0.69], n=46: below 0.70, do not trust these scores" in md
    assert "· judge agrees 0.55" in md
    page = render_html(second)  # type: ignore[arg-type]
    assert 'class="judge-warn">judge agreement 0.55' in page
    # the run keeps what it was told, even after a later check
    assert second.judge_agreement[METRIC]["concordance"] == 0.55  # type: ignore[attr-defined,index]


def test_judge_check_with_an_unreachable_judge_exits_5_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.evaluation.test_eval_judge_failures import free_port

    monkeypatch.setenv("LADDER_MAX_RETRIES", "0")
    home = tmp_path / "home"
    judge = f"openai:judge@http://127.0.0.1:{free_port()}/v1"
    code, out, err = run(
        ["judge", "check", "--judge", judge, "--metric", "context_recall", "--home", str(home)], capsys
    )
    assert code == 5, out + err
    assert "cannot reach http://127.0.0.1:" in err
    assert not judges_dir(Settings(home=home)).exists() or not any(judges_dir(Settings(home=home)).iterdir())


def test_a_check_made_with_other_judge_prompts_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path)
    labelled = load_set()
    save(settings, check_judge("oracle", OracleJudge(labelled), labelled, ["faithfulness"]))
    assert stored_agreement(settings, "oracle", "faithfulness") is not None
    monkeypatch.setattr("evaluation.metrics.judge_prompts.PROMPTS_VERSION", "next")
    assert stored_agreement(settings, "oracle", "faithfulness") is None


def test_a_judged_score_warns_when_its_judge_is_unchecked_or_below_the_bar() -> None:
    from evaluation.report.common import agreement_warns
    from evaluation.results import RunResult

    run = RunResult("r", "s", "", "qa", "complete", "now", judge="j")
    run.judge_agreement = {"a": None, "b": {"concordance": 0.55}, "c": {"concordance": 0.80}}
    assert [agreement_warns(run, m) for m in ("a", "b", "c", "token_f1")] == [True, True, False, False]
    run.judge = None
    assert not agreement_warns(run, "a")

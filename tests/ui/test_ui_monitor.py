"""The Monitor page (AppTest, fake backend) over generated traffic (tests/monitoring/traffic.py: a
quiet fortnight, then a drift week): charts, alerts that fire on the drift week and not on the quiet
one, the engine's JSON/CSV export, drift, the re-test job, the empty state, and escaping of what
users and rule files wrote. Then a headless Chromium look at the page in English and Chinese."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings, load_settings
from tests.monitoring.traffic import (
    DRIFT_DAYS,
    QUIET_DAYS,
    START,
    build_world,
    end_of_day,
    simulate,
    write_dev_suite,
    write_handbook,
)
from tests.ui.helpers import texts, wait_jobs
from tests.ui.test_ui_browser import CHROMIUM, _open, _serve_all, _shot, _stop_all, browser, page, pw  # noqa: F401

Open = Callable[..., Any]
# An address in TEST-NET-2: a link or image to it must never be drawn.
PLANTED = "**bold** [a link](http://198.51.100.7/x) <img src='http://198.51.100.7/i.png'>"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A home with the `handbook` knowledge base (packaged MiniLM), the simulated traffic, and the
    dev suite; built once (tests that write copy it)."""
    root = tmp_path_factory.mktemp("monitor_ui")
    _settings, suite = build_world(root)
    return {"home": root / "home", "suite": suite}


def _use(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LADDER_HOME", str(home))
    monkeypatch.setenv("LADDER_THREADS", "1")
    return load_settings()


def _day(n: int) -> date:
    """Simulated day ``n`` (1-based), as the page's date input takes it."""
    return (START + timedelta(days=n - 1)).date()


def _open_at(workbench: Open, day: date, suite: Path | None = None, rules: Path | None = None) -> Any:
    at = workbench("monitor")
    at.date_input(key="mon_as_of").set_value(day)
    if rules is not None:
        at.text_input(key="mon_rules").input(str(rules))
    if suite is not None:
        at.radio(key="mon_ref").set_value("suite").run()
        at.text_input(key="mon_suite").input(str(suite))
        at.selectbox(key="mon_kb").set_value("handbook")
    return at.run()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The bytes each download button serves, by file id (AppTest's in-memory media store is gone
    after a run, so they are kept as they are stored)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def keep(self: Any, path_or_data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
        file_id = store(self, path_or_data, mimetype, kind, filename)
        files[file_id] = bytes(self._files_by_id[file_id].content)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return files


def _download(at: Any, served: dict[str, bytes], label: str) -> bytes:
    button = next(b for b in at.get("download_button") if b.proto.label == label)
    return served[button.proto.url.rsplit("/", 1)[-1].split(".")[0]]


def test_charts_and_alerts_fire_on_the_drift_week_and_not_on_the_quiet_one(
    workbench: Open, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.monitor import check, load_rules, reference_from_suite, window_stats

    settings = _use(world["home"], monkeypatch)
    reference = reference_from_suite(world["suite"])
    expected = check(
        settings, load_rules().rules, as_of=end_of_day(QUIET_DAYS + DRIFT_DAYS), drift_reference=reference,
        kb="handbook",
    )  # fmt: skip
    assert {r.rule for r in expected if r.firing} == {"thumbs-down", "drift"}

    at = _open_at(workbench, _day(QUIET_DAYS + DRIFT_DAYS), suite=world["suite"])
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 6  # volume, thumbs-down, not-in-KB, citations, latency, score
    stats = window_stats(settings, 7, end_of_day(QUIET_DAYS + DRIFT_DAYS))
    metrics = [m.value for m in at.metric]
    assert metrics[:2] == [str(stats.questions), f"{stats.thumbs_down_rate:.0%}"]
    assert at.metric[1].label == f"Thumbs-down rate ({stats.ratings} ratings)"
    firing = [e.value for e in at.error]
    assert len(firing) == 2, firing
    for result in (r for r in expected if r.firing):  # value, threshold, window and sample size
        line = next(v for v in firing if v.startswith(f"**{result.rule.replace('-', chr(92) + '-')}**"))
        assert f"= {result.value:.3g} " in line and f"{result.threshold:g};" in line
        assert f"over {result.window_days:g} d" in line and f"{result.samples} " in line
    quiet = [c.value for c in at.caption if c.value.startswith(("quiet ·", "not enough data ·"))]
    assert len(quiet) == 2  # the other two shipped rules, greyed

    at = _open_at(workbench, _day(QUIET_DAYS), suite=world["suite"])
    assert [e.value for e in at.error] == []
    assert "No alert fires." in [s.value for s in at.success]
    assert sum(c.value.startswith("quiet ·") for c in at.caption) >= 3


def test_drift_report_is_the_engines(
    workbench: Open, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.monitor import drift, reference_from_suite

    settings = _use(world["home"], monkeypatch)
    day = QUIET_DAYS + DRIFT_DAYS
    report = drift(
        settings, reference_from_suite(world["suite"]), kb="handbook", days=7, as_of=end_of_day(day)
    )
    at = _open_at(workbench, _day(day), suite=world["suite"])
    next(b for b in at.button if b.label == "Measure drift").click().run()
    assert not at.exception
    assert f"{report.recent} distinct questions" in texts(at)
    assert f"{report.far}/{report.recent} = {report.far_share:.1%}" in [m.value for m in at.metric]
    table = at.dataframe[-1].value
    assert list(table["recent median"]) == pytest.approx([s.recent_median for s in report.similarities])
    assert report.far_examples and report.far_examples[0].split("?")[0] in texts(at)


def test_downloads_are_the_engines_export(
    workbench: Open, world: dict[str, Path], served: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.monitor import daily_series, series_csv, series_json

    settings = _use(world["home"], monkeypatch)
    at = _open_at(workbench, _day(QUIET_DAYS + DRIFT_DAYS))
    at.selectbox(key="mon_days").set_value(30).run()
    series = daily_series(settings, 30, end_of_day(QUIET_DAYS + DRIFT_DAYS))
    assert sum(s.questions for s in series) > 300
    assert _download(at, served, "Download JSON").decode() == series_json(series)
    assert _download(at, served, "Download CSV").decode() == series_csv(series)


def test_an_empty_home_says_how_answers_get_logged(workbench: Open) -> None:
    at = workbench("monitor")
    assert not at.exception
    shown = texts(at)
    assert "No answers logged yet" in shown and "`ladder ask`" in shown and "docs/monitoring.md" in shown
    assert not at.get("vega_lite_chart") and not at.get("download_button")
    at.session_state["lang"] = "zh"
    at.run()
    assert at.title[0].value == "监控" and "还没有记录任何回答" in texts(at)


def _rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


def test_questions_and_rule_text_are_shown_escaped(
    workbench: Open, world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off-domain questions with Markdown and HTML in them, asked after the simulated weeks, are
    the drift's far examples; a rule named with Markdown fires. Neither may render."""
    from assistant.feedback import question_hash
    from assistant.monitoring import AnswerLogEntry, AnswerLogStore, iso

    home = tmp_path / "home"
    shutil.copytree(world["home"], home)
    settings = _use(home, monkeypatch)
    day = QUIET_DAYS + DRIFT_DAYS + 10
    planted = [f"How far is Jupiter from the sun? {PLANTED}", f"Who won the world cup in 1951? {PLANTED}"]
    entries = [
        AnswerLogEntry(
            created=iso(end_of_day(day - 1) + timedelta(hours=n + 1)), source="chat", question=text,
            question_hash=question_hash(text), answer_chars=10, latency_ms=500.0, not_in_kb=True,
            citations=0, best_score=0.1, kb="handbook", model="fake", strategy="rag", session_id=f"p{n}",
        )
        for n, text in enumerate(planted * 2 + [planted[1].replace("1951", "1962")])
    ]  # fmt: skip
    with AnswerLogStore(settings.db_path) as store:
        store.add(entries, keep_days=10_000, now=end_of_day(day))
    rules = tmp_path / "rules.yaml"
    rules.write_text(f'rules:\n  - name: "{PLANTED.replace(chr(39), "")}"\n    when: volume over 7d > 0\n')

    at = _open_at(workbench, _day(day), suite=world["suite"], rules=rules)
    next(b for b in at.button if b.label == "Measure drift").click().run()
    assert not at.exception
    shown = [e.value for e in [*at.markdown, *at.error, *at.caption, *at.warning]]
    assert any("Jupiter" in v for v in at.markdown.values)  # a far example is shown
    assert any("fires" in v for v in at.error.values)
    for value in shown:
        html = _rendered(value)
        if "198.51.100.7" in value:
            assert html.count("<strong>") == (1 if "fires" in value else 0), value  # the rule's own bold
            assert "<a " not in html and "<img" not in html, value
            assert "**bold**" in html and "[a link](http://198.51.100.7/x)" in html, value


def test_retest_runs_in_the_background_and_shows_old_and_new_verdicts(
    workbench: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a decision chosen, the button runs the monitor's retest as a background job; the
    verdicts side by side are the stored decisions'. With the fake backend the new decision is
    not met: a result (the job is done), not a failure."""
    from assistant.feedback import promote, record_feedback
    from evaluation.decide.engine import load_decision_config, run_decision
    from evaluation.decide.store import DecisionStore
    from evaluation.suites.source import SuiteFiles
    from tests.helpers.decide import case_text, reference, rung, write_config

    settings = load_settings({"threads": 1})
    simulate(settings)  # some traffic: the page is not empty
    config = write_config(tmp_path, n_dev=6, n_test=4, rungs=[rung("prompt")], search={"enabled": False})
    old = run_decision(load_decision_config(config), settings)
    for i in range(4):
        item = record_feedback(
            settings, question=case_text("fb", i), answer="shipping", rating="down",
            correction=reference("fb", i), session_id=f"fb{i}", source="chat",
        )  # fmt: skip
        promote(settings, item.id, "suite", suites=SuiteFiles())

    at = workbench("monitor")
    assert at.selectbox(key="mon_decision").value == old.decision_id  # the store's list, newest first
    # Its config names no knowledge base: drift rules are skipped (said so), the others checked.
    assert not at.error and "Drift needs a knowledge base" in texts(at)
    assert any(c.value.startswith("skipped · drift") for c in at.caption)
    button = next(b for b in at.button if b.label == "Re-run the decision with promoted feedback")
    button.click().run()
    finished = wait_jobs("retest")
    assert len(finished) == 1 and finished[0].params == {"decision": old.decision_id}
    assert finished[0].status == "done", finished[0].log_tail()
    assert finished[0].result["new"]["status"] != "met"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with DecisionStore(settings.db_path) as store:
        rows = store.list_decisions(limit=5)
    new = next(r for r in rows if r["decision_id"] != old.decision_id)
    table = at.dataframe[-1].value
    assert list(table.iloc[0, 1:]) == [old.decision_id, new["decision_id"]]
    assert list(table.iloc[1, 1:]) == [old.status, new["status"]]
    assert "2 dev + 2 test items (4 promoted, 0 dropped" in texts(at)


# ---- the browser look ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A workbench server over a home whose simulated traffic ends today, with the `handbook`
    knowledge base and a decision on the shop's dev suite (its drift reference)."""
    import os

    import yaml

    from assistant.feedback import promote, record_feedback
    from assistant.knowledge import KnowledgeBase
    from evaluation.decide.engine import load_decision_config, run_decision
    from evaluation.suites.source import SuiteFiles
    from tests.monitoring import traffic

    root = tmp_path_factory.mktemp("monitor_browser")
    home = root / "home"
    settings = load_settings(
        {"home": str(home), "embedding_model": "all-MiniLM-L6-v2", "threads": 1, "allowed_roots": str(root),
         "model": "fake"}
    )  # fmt: skip
    with KnowledgeBase.create("handbook", settings) as kb:
        kb.add(write_handbook(root / "handbook"))
    with pytest.MonkeyPatch.context() as patch:  # the drift week ends today
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        patch.setattr(traffic, "START", today - timedelta(days=QUIET_DAYS + DRIFT_DAYS - 1))
        simulate(settings)
    (root / "test").mkdir()
    test_suite = write_dev_suite(root / "test", 20, 2)
    config = root / "decide.yaml"
    config.write_text(
        yaml.safe_dump(
            {"name": "shop", "suites": {"dev": str(write_dev_suite(root)), "test": str(test_suite)},
             "targets": {"exact_match": ">= 0.8"}, "rungs": ["prompt"], "kb": "handbook", "order": "given"}
        )
    )  # fmt: skip
    run_decision(load_decision_config(config), settings)
    for i in range(4):  # what users said, promoted to a suite: the re-test's new split
        item = record_feedback(
            settings, question=f"Can I return a kettle after {i + 2} weeks?", answer="no", rating="down",
            correction="yes, within 30 days", session_id=f"fb{i}", source="chat",
        )  # fmt: skip
        promote(settings, item.id, "suite", suites=SuiteFiles())
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    env.update(LADDER_HOME=str(home), LADDER_TEST_CWD=str(root), LADDER_THREADS="1",
               LADDER_EMBEDDING_MODEL="all-MiniLM-L6-v2")  # fmt: skip
    [(server, url)] = _serve_all([(["ui", "--model", "fake"], root / "ui.log")], env)
    yield {"root": root, "ui": url}
    _stop_all([server])


@pytest.mark.skipif(pw is None, reason="playwright is not installed (pip install -e '.[dev]')")
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing")
def test_monitor_page_in_a_browser_in_english_and_chinese(page: Any, servers: dict[str, Any]) -> None:  # noqa: F811
    """Charts, a firing alert and the drift report drawn by Chromium; every request stays on the
    machine (the ``page`` fixture checks it); screenshots monitor_en.png and monitor_zh.png."""
    _open(page, servers["ui"] + "/monitor")
    page.get_by_text("fires:").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Measure drift").click()
    page.get_by_text("distinct questions ·").wait_for(timeout=120_000)
    assert page.get_by_test_id("stException").count() == 0
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 6
    _shot(page, "monitor_en")
    page.get_by_role("button", name="Re-run the decision with promoted feedback").click()
    page.get_by_text("New split from promoted feedback").wait_for(timeout=120_000)
    page.get_by_text("The verdict").first.wait_for()
    _shot(page, "monitor_retest_en")
    page.get_by_text("中文").click()
    page.get_by_role("heading", name="监控").first.wait_for()
    page.get_by_text("已触发").first.wait_for(timeout=120_000)
    _shot(page, "monitor_zh")

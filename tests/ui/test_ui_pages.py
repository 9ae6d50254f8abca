"""AppTest tests of the workbench pages with the fake backend: knowledge base, playground,
evaluate; the login gate and the language switch."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ui.helpers import REPO, texts, wait_jobs, write_suite

Open = Callable[..., Any]


def test_every_visible_string_has_both_languages() -> None:
    from ui.web.i18n import STRINGS

    used: set[str] = set()
    for path in (REPO / "ui").rglob("*.py"):
        used |= set(re.findall(r"\b(?:t|lazy)\(\s*[\"']([a-z_.]+)[\"']", path.read_text(encoding="utf-8")))
    used -= {"job.status.", "kb.status.", "set.weak."}  # built from a status or a reason:
    used |= {"job.status." + s for s in ("queued", "running", "done", "failed", "stopped", "died")}
    from assistant.knowledge import ingest

    statuses = (ingest.ADDED, ingest.REPLACED, ingest.UNCHANGED, ingest.DUPLICATE, ingest.FAILED,
                ingest.SKIPPED)  # fmt: skip
    used |= {"kb.status." + s for s in statuses}
    from ui.auth import PROBLEMS

    used |= {"set.weak." + problem for problem in PROBLEMS}
    missing = sorted(key for key in used if key not in STRINGS)
    assert not missing, f"keys used in ui/ but not in the strings table: {missing}"
    for key, (en, zh) in STRINGS.items():
        assert en.strip() and zh.strip(), key
        assert set(re.findall(r"{(\w+)}", en)) == set(re.findall(r"{(\w+)}", zh)), key
    assert len(used) > 100


def test_language_switch_translates_the_page(workbench: Open) -> None:
    at = workbench("knowledge")
    assert at.title[0].value == "Knowledge base"
    at.session_state["lang"] = "zh"
    at.run()
    assert at.title[0].value == "知识库"
    assert "还没有知识库" in texts(at)


def test_without_the_password_only_the_login_is_served(
    workbench: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.auth import hash_password, verify_password

    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert not verify_password("x", "garbage")
    monkeypatch.setenv("LADDER_UI_PASSWORD_HASH", stored)
    at = workbench()
    assert at.title[0].value == "Sign in"
    with pytest.raises(ValueError):  # the other pages are not even registered
        at.switch_page("views/knowledge.py")
    at.text_input[0].input("wrong password")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error)
    at.text_input[0].input("correct horse")
    at.button[0].click().run()
    assert at.title[0].value != "Sign in"
    at.switch_page("views/knowledge.py").run()
    assert at.title[0].value == "Knowledge base"


def test_knowledge_base_create_upload_search_remove(workbench: Open, isolated_home: Path) -> None:
    at = workbench("knowledge")
    assert "No knowledge base yet" in texts(at)
    at.text_input[0].input("handbook")
    at.button[0].click().run()  # the form's Create
    assert any("Created knowledge base handbook" in s.value for s in at.success)
    assert at.selectbox(key="kb_selected").value == "handbook"
    uploader = at.file_uploader[0]
    uploader.upload("leave.md", b"# Leave\n\nEmployees get fifteen days of annual leave.\n", "text/markdown")
    uploader.upload("run.exe", b"MZ\x00\x01", "application/octet-stream")
    at.run()
    ingest = next(b for b in at.button if b.label == "Add to the knowledge base")
    ingest.click().run()
    assert any("run.exe: refused, unsupported type" in e.value for e in at.error)
    finished = wait_jobs("kb_add")
    assert [job.status for job in finished] == ["done"], finished[0].log_tail()
    at.run()
    report = at.dataframe[0].value
    assert list(report["file"]) == ["leave.md"]
    assert list(report["status"]) == ["added"] and int(report["chunks"].iloc[0]) >= 1
    assert [m.value for m in at.metric][:2] == ["1", str(int(report["chunks"].iloc[0]))]
    at.text_input(key="kb_query").input("annual leave").run()
    assert any("leave.md" in e.label for e in at.expander)
    # Each hit shows the score it is ordered by and the relevance min_score compares.
    assert any("score" in e.label and "relevance" in e.label for e in at.expander)
    assert any("fifteen days" in t.value for t in at.text)
    at.button(key="kb_remove").click().run()
    assert "This knowledge base is empty" in texts(at)


def test_uploads_over_the_limit_or_of_unknown_type_are_refused(
    workbench: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.knowledge import KnowledgeBase
    from assistant.settings import load_settings
    from ui.web import jobs

    monkeypatch.setenv("LADDER_MAX_FILE_MB", "0.001")  # about 1 KB
    KnowledgeBase.create("handbook", load_settings())
    at = workbench("knowledge")
    at.file_uploader[0].upload("big.md", b"x" * 5000, "text/markdown")
    at.file_uploader[0].upload("notes.xyz", b"hello", "application/octet-stream")
    at.run()
    next(b for b in at.button if b.label == "Add to the knowledge base").click().run()
    errors = [e.value for e in at.error]
    assert "big.md: refused, larger than 0.001 MB." in errors
    assert any(e.startswith("notes.xyz: refused, unsupported type") for e in errors)
    assert jobs.list_jobs(load_settings()) == []  # nothing left to ingest: no job


def test_playground_answers_side_by_side_with_traces(workbench: Open) -> None:
    at = workbench("playground")
    assert "Write a question" in texts(at)
    at.text_area(key="play_question").input("What is <b>RAG</b>?")
    at.multiselect[0].set_value(["prompt", "reflection", "rag"])
    at.button[0].click().run()
    assert [h.value for h in at.subheader] == ["prompt", "reflection", "rag"]
    assert "[fake] What is &lt;b>RAG&lt;/b>?" in [m.value for m in at.markdown]  # HTML shown as text
    assert not any(getattr(m.proto, "allow_html", False) for m in at.markdown)
    # rag without a knowledge base: a readable error in its own column, the others answered
    assert len(at.error) == 1 and "knowledge base" in at.error[0].value.lower()
    assert "Traceback" not in at.error[0].value
    assert any(e.label.startswith("Trace: ") for e in at.expander)
    assert any(m.label == "Model calls" for m in at.metric)


def test_evaluate_runs_in_the_background_and_compares(workbench: Open, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suites")
    at = workbench("evaluate")
    assert "No runs yet" in texts(at)
    at.text_input[0].input(str(suite))
    at.button[0].click().run()
    finished = wait_jobs("eval")
    assert finished[0].status == "done", finished[0].log_tail()
    at.run()
    assert any("is complete" in s.value for s in at.success)
    scores = at.dataframe[0].value
    assert list(scores["strategy"]) == ["prompt"]
    assert scores["exact_match"].iloc[0].startswith("0.333")
    assert any("Threshold missed" in e.value for e in at.error)
    worst = [e.label for e in at.expander if e.label[0].isdigit()]
    assert len(worst) == 3 and "What colour" in worst[-1]  # the only right answer comes last
    # a second run with another strategy, then compare
    at.multiselect[0].set_value(["reflection"])
    at.button[0].click().run()
    assert wait_jobs("eval")[0].status == "done"
    at.run()
    table = at.dataframe[-1].value
    assert set(table["metric"]) == {"exact_match", "token_f1"}
    assert list(table["n"]) == [3, 3]


def test_decide_runs_the_ladder_and_shows_the_verdict(workbench: Open, tmp_path: Path) -> None:
    from tests.helpers.decide import rung, write_config

    config = write_config(tmp_path, n_dev=6, n_test=4, rungs=[rung("prompt"), rung("reflection")])
    at = workbench("decide")
    assert "No decisions yet" in texts(at)
    at.text_input[0].input(str(config)).run()
    assert any("targets:" in c.value for c in at.code)  # the config, shown
    next(b for b in at.button if b.label == "Decide in the background").click().run()
    finished = wait_jobs("decide")
    assert finished[0].status == "done", finished[0].log_tail()
    at.run()
    assert any("The decision is ready (not_met)" in s.value for s in at.success)
    rungs = at.dataframe[-1].value
    assert list(rungs["rung"]) == ["prompt", "reflection"]
    assert set(rungs["meets"]) == {"✗"}
    assert any("No rung" in e.value or "no rung" in e.value.lower() for e in at.error)
    assert len(at.get("vega_lite_chart")) >= 1
    assert at.get("download_button")[0].proto.label == "Export the HTML report"
    at.session_state["lang"] = "zh"
    at.run()
    assert at.title[0].value == "决策"

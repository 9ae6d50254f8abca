"""A new install opens the workbench on Decide with a shipped demo decision preselected; its
knowledge base does not exist yet. The page must say what to do first and do it from the
browser (no `ladder kb create` hint), building the demo knowledge base in the background
the way `ladder demo` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ui.helpers import REPO, texts, wait_jobs

Open = Callable[..., Any]
DEMO_DOCS = sorted(p.name for p in (REPO / "datasets" / "demo" / "kb").iterdir() if p.is_file())


def _start(at: Any) -> Any:
    return next(b for b in at.button if b.label == "Decide in the background")


def test_a_new_install_is_told_what_to_do_first_and_builds_the_demo_kb(
    workbench: Open, isolated_home: Path
) -> None:
    from assistant.knowledge import KnowledgeBase
    from assistant.settings import load_settings

    assert not (isolated_home / "kb").exists()
    at = workbench()  # Decide is the home page
    assert at.title[0].value == "Decide"
    assert at.selectbox[0].value.endswith("general_knowledge.yaml")  # a demo decision, preselected
    shown = texts(at)
    assert "Getting started" in shown and "qinghe-demo" in shown and f"{len(DEMO_DOCS)} documents" in shown
    assert "ladder kb" not in shown and "ladder demo" not in shown  # nothing sends the user to a shell
    assert _start(at).disabled  # it would only fail in the background
    at.button(key="dec_demo_kb").click().run()
    finished = wait_jobs("demo_kb", timeout_s=600)
    assert [job.status for job in finished] == ["done"], finished[0].log_tail()
    at.run()
    with KnowledgeBase.open("qinghe-demo", load_settings()) as kb:
        sources = sorted(Path(s.source).name for s in kb.sources())
        chunks = sum(s.chunks for s in kb.sources())
    assert sources == DEMO_DOCS and chunks > len(DEMO_DOCS)  # 200-character chunks, as `ladder demo`
    ready = [s.value for s in at.success]
    assert ready == [
        f"The demo knowledge base qinghe-demo is ready ({len(DEMO_DOCS)} documents, {chunks} chunks). "
        "Pick a demo decision and press Decide in the background."
    ]
    assert "Getting started" not in texts(at) and not _start(at).disabled
    at.run()
    assert not at.success  # said once


def test_a_config_naming_a_missing_kb_points_to_the_knowledge_base_page(
    workbench: Open, tmp_path: Path
) -> None:
    from tests.helpers.decide import rung, write_config

    config = write_config(tmp_path, n_dev=4, n_test=4, rungs=[rung("prompt"), rung("rag")], kb="handbook")
    at = workbench("decide")
    at.text_input[0].input(str(config)).run()
    assert any("knowledge base handbook, which does not exist yet" in w.value for w in at.warning)
    assert [link.proto.page for link in at.get("page_link")] == ["knowledge"]
    assert _start(at).disabled and "ladder kb" not in texts(at)
    assert at.get("button") and not any(b.key == "dec_demo_kb" for b in at.button)  # not the demo's


def test_a_demo_kb_that_cannot_be_built_says_why_in_the_page(
    workbench: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "not_a_model").mkdir()
    monkeypatch.setenv("LADDER_EMBEDDING_MODEL", str(tmp_path / "not_a_model"))
    at = workbench()
    at.button(key="dec_demo_kb").click().run()
    finished = wait_jobs("demo_kb", timeout_s=300)
    assert [job.status for job in finished] == ["failed"], finished[0].log_tail()
    at.run()
    shown = [e.value for e in at.error]
    assert len(shown) == 1 and "not_a_model" in shown[0] and "Traceback" not in shown[0], shown
    assert "Getting started" in texts(at)  # still the first thing to do

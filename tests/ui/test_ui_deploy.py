"""The Deploy page (AppTest): the empty state, a stored deployment's table, verdict and serve
command, and a deployment run as a background job (the real transformers formats on the tiny
model). Then a headless Chromium look at the page in English and Chinese."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings, load_settings
from evaluation.deploy.engine import DeployRequest, run_deploy
from tests.helpers.deploy import spec, store_decision, use_formats
from tests.ui.helpers import texts, wait_jobs
from tests.ui.test_ui_browser import CHROMIUM, _open, _serve_all, _shot, _stop_all, browser, page, pw  # noqa: F401

Open = Callable[..., Any]


def _deployed(settings: Settings, folder: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_formats(monkeypatch, spec("fake-q2", 10), spec("fake-q4", 20), spec("fake-f16", 30))
    store_decision(folder, settings, str(model))
    run_deploy(DeployRequest("cases", isolate=False), settings)


def test_an_empty_home_says_what_to_do_first(workbench: Open) -> None:
    at = workbench("deploy")
    assert not at.exception and at.title[0].value == "Deploy"
    assert "No decision recommends a rung yet" in texts(at) and "No deployments yet." in texts(at)


def test_a_deployment_shows_its_table_verdict_and_serve_command(
    workbench: Open, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployed(load_settings({"threads": 1}), tmp_path, tiny_model_dir, monkeypatch)
    at = workbench("deploy")
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[-1].value
    assert list(table["format"]) == ["fake-q2", "fake-q4", "fake-f16"]
    assert list(table["meets"]) == ["no", "yes", "yes"]
    assert at.success[0].value.startswith("Deploy fake-q4: the cheapest format")
    assert "ladder serve --model fake:" in at.code[0].value and "finetune synthesize" in texts(at)
    assert at.selectbox[0].value.startswith("d2026")  # the decision to deploy, picked by default


def test_deploy_runs_in_the_background_with_the_real_transformers_formats(
    workbench: Open, tmp_path: Path, tiny_model_dir: Path
) -> None:
    settings = load_settings({"threads": 1})
    store_decision(tmp_path, settings, str(tiny_model_dir), name="tiny")
    at = workbench("deploy")
    at.multiselect[0].set_value(["transformers-bf16", "transformers-fp32"]).run()
    next(b for b in at.button if b.label == "Deploy").click().run()
    [job] = wait_jobs("cli", timeout_s=600)
    assert job.params["argv"][:2] == ["deploy", at.selectbox[0].value] and job.params["deployment"] == "tiny"
    # A tiny random model answers nothing right: no format meets (the CLI's exit 1), and the
    # deployment with its measured table is there all the same.
    assert job.status == "failed" and "exited with code 1" in (job.error or ""), job.log_tail()
    at.run()
    table = at.dataframe[-1].value
    assert list(table["format"]) == ["transformers-bf16", "transformers-fp32"]
    assert list(table["state"]) == ["measured", "measured"] and list(table["meets"]) == ["no", "no"]
    assert any(e.value.startswith("No format met every target") for e in at.error)
    assert "No format met every target: that is the result, not a failure." in texts(at)
    home = settings.home / "deployments" / "tiny"
    assert (home / "transformers-bf16" / "config.json").is_file() and (home / "manifest.json").is_file()


# ---- the browser look ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[dict[str, Any]]:
    """A workbench over a home with one deployment (fake formats: what the page draws is the same)."""
    root = tmp_path_factory.mktemp("deploy_browser")
    home = root / "home"
    settings = load_settings({"home": str(home), "threads": 1})
    with pytest.MonkeyPatch.context() as patch:
        _deployed(settings, root, tiny_model_dir, patch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    env.update(LADDER_HOME=str(home), LADDER_TEST_CWD=str(root), LADDER_THREADS="1")
    [(server, url)] = _serve_all([(["ui", "--model", "fake"], root / "ui.log")], env)
    yield {"root": root, "ui": url}
    _stop_all([server])


@pytest.mark.skipif(pw is None, reason="playwright is not installed (pip install -e '.[dev]')")
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing")
def test_deploy_page_in_a_browser_in_english_and_chinese(page: Any, servers: dict[str, Any]) -> None:  # noqa: F811
    """The form, the table and the verdict drawn by Chromium; every request stays on the machine
    (the ``page`` fixture checks it); screenshots deploy_en.png and deploy_zh.png."""
    _open(page, servers["ui"] + "/deploy")
    page.get_by_role("tab", name="Deployments").click()
    page.get_by_text("Deploy fake-q4: the cheapest format").wait_for(timeout=120_000)
    assert page.get_by_test_id("stException").count() == 0
    _shot(page, "deploy_en")
    page.get_by_text("中文").click()
    page.get_by_role("heading", name="部署").first.wait_for()
    page.get_by_role("tab", name="已有部署").click()
    page.get_by_text("Deploy fake-q4").first.wait_for(timeout=120_000)
    _shot(page, "deploy_zh")

"""AppTest tests of the Settings page: values written to ladder.yaml (and read back by the
loader the CLI uses), the password stored hashed, the judge and targets as defaults of the
other pages, the price table, pack pulling as a background job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ui.helpers import wait_jobs

Open = Callable[..., Any]


def _button(at: Any, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_backend_settings_are_saved_to_ladder_yaml(
    workbench: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.settings import load_settings

    at = workbench("settings")
    assert at.title[0].value == "Settings"
    form_inputs = {w.label: w for w in at.text_input}
    form_inputs["OpenAI-compatible endpoint"].input("http://127.0.0.1:9/v1")
    form_inputs["API key"].input("sk-secret-123456")
    at.selectbox[-1].set_value("zh")  # language of decisions
    at.number_input[0].set_value(12.0)
    next(b for b in at.button if b.label == "Save" and b.proto.form_id == "set_backend").click().run()
    saved = yaml.safe_load((tmp_path / "ladder.yaml").read_text(encoding="utf-8"))
    assert saved["openai_base_url"] == "http://127.0.0.1:9/v1"
    assert saved["openai_api_key"] == "sk-secret-123456" and saved["language"] == "zh"
    assert saved["request_timeout_s"] == 12.0
    assert saved["model"] == "fake"  # the value in the form (from LADDER_MODEL)
    assert any("An environment variable or flag still overrides: model" in w.value for w in at.warning)
    settings = load_settings()
    assert settings.openai_base_url == "http://127.0.0.1:9/v1" and settings.sources["language"] == "file"
    everything = at.dataframe[-1].value
    shown = dict(zip(everything["setting"], everything["value"], strict=True))
    assert "sk-secret-123456" not in shown["openai_api_key"]


def test_password_is_stored_hashed_and_then_required(workbench: Open, tmp_path: Path) -> None:
    at = workbench("settings")
    assert any("No password" in c.value for c in at.caption)
    new, repeat = (w for w in at.text_input if "password" in w.label.lower() or w.label == "Repeat it")
    new.input("s3cret-pass")
    repeat.input("s3cret-pass")
    _button(at, "Set the password").click().run()
    stored = yaml.safe_load((tmp_path / "ladder.yaml").read_text(encoding="utf-8"))["ui_password_hash"]
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    fresh = workbench()
    assert fresh.title[0].value == "Sign in"


def test_judge_and_targets_become_defaults_and_the_price_table_is_checked(workbench: Open) -> None:
    at = workbench("settings")
    areas = {w.label: w for w in at.text_area}
    judge = next(w for w in at.text_input if w.label == "Default judge model")
    judge.input("openai:judge@http://127.0.0.1:9/v1")
    areas["Default decision targets (YAML)"].input('exact_match: ">= 0.9"\n')
    areas["Price table (YAML)"].input("currency: EUR\nprices:\n  - match: '*'\n    compute_per_hour: 0.5\n")
    next(b for b in at.button if b.label == "Save" and b.proto.form_id == "set_eval").click().run()
    assert not at.error, [e.value for e in at.error]
    evaluate = workbench("evaluate")
    assert any(w.value == "openai:judge@http://127.0.0.1:9/v1" for w in evaluate.text_input)
    decide = workbench("decide")
    decide.radio(key="dec_source").set_value("write").run()
    assert 'exact_match: ">= 0.9"' in decide.text_area[0].value


def test_pulling_an_unknown_catalog_entry_fails_readably(workbench: Open, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "- name: broken-pack\n  description: test\n  upstream: none\n  license: none\n  languages: [en]\n"
        "  gguf_name: x.gguf\n  size_bytes: 10\n  sha256: '" + "0" * 64 + "'\n"
        "  parts: [{requirement: 'no-such-carrier-pkg==9.9.9', member: x.gguf}]\n",
        encoding="utf-8",
    )
    (tmp_path / "ladder.yaml").write_text(
        f"catalog_file: {catalog}\npip_no_index: true\npip_find_links: {tmp_path}\n", encoding="utf-8"
    )
    at = workbench("settings")
    at.selectbox(key="set_pack").set_value("broken-pack").run()
    _button(at, "Pull (download, verify, convert)").click().run()
    finished = wait_jobs("pull")
    assert finished[0].status == "failed"
    at.run()
    assert at.error and "Traceback" not in at.error[0].value


def _sign_in(workbench: Open, password: str) -> Any:
    at = workbench()
    assert at.title[0].value == "Sign in"
    at.text_input[0].input(password)
    at.button[0].click().run()
    assert at.title[0].value != "Sign in"
    at.switch_page("views/settings.py").run()
    return at


def _password_form(at: Any) -> dict[str, Any]:
    return {w.label: w for w in at.text_input if w.form_id == "set_password"}


def _stored_hash(tmp_path: Path) -> str | None:
    data = yaml.safe_load((tmp_path / "ladder.yaml").read_text(encoding="utf-8")) or {}
    return data.get("ui_password_hash")


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("aaaaaaaa", "Too short"),
        ("aaaaaaaaaaaa", "repeats one character or a short pattern"),
        ("abcdefghijkl", "run of letters, digits or keys"),
        ("Password2024!", "common password"),
    ],
)
def test_a_weak_password_is_refused(workbench: Open, tmp_path: Path, weak: str, reason: str) -> None:
    at = workbench("settings")
    form = _password_form(at)
    form["New password (at least 10 characters)"].input(weak)
    form["Repeat it"].input(weak)
    _button(at, "Set the password").click().run()
    assert any(reason in e.value for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "ladder.yaml").exists()  # nothing was written
    assert workbench().title[0].value != "Sign in"


def test_changing_or_removing_the_password_needs_the_current_one(workbench: Open, tmp_path: Path) -> None:
    from ui.auth import hash_password, verify_password

    (tmp_path / "ladder.yaml").write_text(f"ui_password_hash: '{hash_password('first passphrase')}'\n")
    original = _stored_hash(tmp_path)
    at = _sign_in(workbench, "first passphrase")
    form = _password_form(at)
    form["Current password"].input("not the password")
    form["New password (at least 10 characters)"].input("second passphrase")
    form["Repeat it"].input("second passphrase")
    _button(at, "Set the password").click().run()
    assert [e.value for e in at.error] == ["The current password is wrong."]
    assert _stored_hash(tmp_path) == original
    removal = next(w for w in at.text_input if w.form_id == "clear_password")
    removal.input("not the password")
    _button(at, "Remove the password").click().run()
    assert [e.value for e in at.error] == ["The current password is wrong."]
    assert _stored_hash(tmp_path) == original
    # With the current password: changed, and this session stays signed in.
    form = _password_form(at)
    form["Current password"].input("first passphrase")
    form["New password (at least 10 characters)"].input("second passphrase")
    form["Repeat it"].input("second passphrase")
    _button(at, "Set the password").click().run()
    assert not at.error, [e.value for e in at.error]
    changed = _stored_hash(tmp_path)
    assert changed and verify_password("second passphrase", changed)
    at.run()
    assert at.title[0].value == "Settings"
    next(w for w in at.text_input if w.form_id == "clear_password").input("second passphrase")
    _button(at, "Remove the password").click().run()
    assert _stored_hash(tmp_path) is None
    assert workbench().title[0].value != "Sign in"

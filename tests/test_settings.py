from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import load_settings


def test_defaults_when_nothing_is_set(isolated_home: Path) -> None:
    settings = load_settings()
    assert settings.home == isolated_home  # from the env var the fixture sets
    assert settings.sources["home"] == "env"
    assert settings.sources["batch_size"] == "default"
    assert settings.batch_size == 16
    assert settings.dtype == "auto"


def test_precedence_flag_over_env_over_file_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ladder.yaml").write_text("threads: 3\nbatch_size: 5\nmax_retries: 7\n")
    monkeypatch.setenv("LADDER_THREADS", "2")
    monkeypatch.setenv("LADDER_BATCH_SIZE", "6")
    settings = load_settings({"threads": 1})
    assert settings.threads == 1 and settings.sources["threads"] == "flag"
    assert settings.batch_size == 6 and settings.sources["batch_size"] == "env"
    assert settings.max_retries == 7 and settings.sources["max_retries"] == "file"
    assert settings.max_concurrency == 4 and settings.sources["max_concurrency"] == "default"


def test_none_flag_does_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADDER_THREADS", "2")
    assert load_settings({"threads": None}).threads == 2


def test_explicit_config_and_settings_section(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("settings:\n  model: fake\n  context_overflow: error\n")
    settings = load_settings(config=path)
    assert settings.model == "fake"
    assert settings.context_overflow == "error"


def test_config_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("dtype: float32\n")
    monkeypatch.setenv("LADDER_CONFIG", str(path))
    assert load_settings().dtype == "float32"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("threads: many\n", "ladder.yaml: bad value for threads"),
        ("thread: 2\n", "unknown setting 'thread'"),
        ("dtype: float16\n", "dtype must be one of"),
        ("threads: 0\n", "threads must be > 0"),
        ("[1, 2\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_file_values_name_the_file(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "ladder.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADDER_MAX_RETRIES", "lots")
    with pytest.raises(ConfigError, match=r"\$LADDER_MAX_RETRIES"):
        load_settings()


def test_bool_coercion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADDER_PIP_NO_INDEX", "yes")
    assert load_settings().pip_no_index is True
    monkeypatch.setenv("LADDER_PIP_NO_INDEX", "maybe")
    with pytest.raises(ConfigError, match="not a boolean"):
        load_settings()


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(config=tmp_path / "nope.yaml")


def test_api_key_is_masked_and_openai_env_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    settings = load_settings()
    assert settings.openai_api_key == "sk-secret-value-123"
    shown = settings.public_items()["openai_api_key"]
    assert "secret" not in shown and shown.startswith("sk-")
    monkeypatch.setenv("LADDER_OPENAI_API_KEY", "ladder-key-456789")
    assert load_settings().openai_api_key == "ladder-key-456789"

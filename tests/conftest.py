"""Shared fixtures. Importing ``assistant`` first applies the offline/privacy env before
any test imports transformers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import assistant  # noqa: F401  (privacy env first)
from assistant.settings import Settings

# The home where `make test` pulled the real packs, captured before tests redirect
# LADDER_HOME to temporary folders.
REAL_HOME = Path(os.environ.get("LADDER_HOME", Path.home() / ".ladder")).expanduser()
TEST_PACK = "smollm2-135m"
# Knowledge bases in tests use the packaged all-MiniLM-L6-v2 (in the venv, small and fast) unless
# a test asks for another. Set for the whole session, so module-scoped fixtures and the servers
# the UI tests start see it too; ``isolated_home`` sets it again for each test. The multilingual
# default pack has tests of its own (tests/knowledge/test_kb_embedder_pack.py), which unset it.
os.environ["LADDER_EMBEDDING_MODEL"] = "all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own LADDER_HOME and no stray LADDER_* settings."""
    for key in list(os.environ):
        if key.startswith("LADDER_"):
            monkeypatch.delenv(key)
    home = tmp_path / "ladder_home"
    monkeypatch.setenv("LADDER_HOME", str(home))
    monkeypatch.setenv("LADDER_EMBEDDING_MODEL", "all-MiniLM-L6-v2")  # see the top of this file
    monkeypatch.chdir(tmp_path)
    yield home


@pytest.fixture(scope="session")
def real_pack_dir() -> Path:
    """The converted test pack; pulled on first use if `make test` has not done it."""
    from assistant.models.pull import ensure_pack
    from assistant.settings import load_settings

    settings = load_settings({"home": str(REAL_HOME)})
    return ensure_pack(TEST_PACK, settings)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random llama, made from a GGUF we write ourselves and converted the way a pack is."""
    from assistant.models.pull import convert_gguf
    from tests.helpers.tiny_gguf import write_tiny_gguf

    root = tmp_path_factory.mktemp("tiny_model")
    gguf = write_tiny_gguf(root / "tiny.gguf")
    convert_gguf(gguf, root / "model")
    return root / "model"


@pytest.fixture
def fast_settings(isolated_home: Path) -> Settings:
    from assistant.settings import load_settings

    return load_settings({"threads": 1, "dtype": "float32", "batch_size": 4})

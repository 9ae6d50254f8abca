"""The test pack as GGUF files (f16, Q8_0, Q4_K_M), built once per test process.

The converter comes from the pinned llama-cpp-python sdist, which ``make engines`` leaves in
the real ``LADDER_HOME``'s wheel cache; a test home gets a hard link to it (or a copy), so no
test downloads anything. Tests that use these call ``require_engine()`` first: without the
engine they skip with the install hint (``make test`` installs it, so CI runs them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from assistant.progress import NullProgress
from assistant.settings import load_settings
from finetune.deploy.formats import Built

_BUILT: dict[str, Built] = {}


def require_engine() -> None:
    from assistant.backends.llama_cpp import engine_missing

    hint = engine_missing()
    if hint is not None:
        pytest.skip(hint)


def seed_converter_sdist(real_home: Path, test_home: Path) -> None:
    """Put the pinned sdist where the test home's ``converter_dir`` looks for it."""
    from finetune.deploy.gguf import SDIST_NAME

    source = real_home / "cache" / "wheels" / SDIST_NAME
    target = test_home / "cache" / "wheels" / SDIST_NAME
    if target.is_file():
        return
    if not source.is_file():
        pytest.fail(f"{source} is missing: `make engines` downloads it (the GGUF converter comes from it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def built_gguf(kind: str, pack_dir: Path, root: Path) -> Path:
    """The test pack as ``kind`` (``f16``, ``q8_0``, ``q4_k_m``) under ``root``, built once."""
    return build_once(kind, pack_dir, root).files[0]


def build_once(kind: str, pack_dir: Path, root: Path) -> Built:
    """What the builder of ``kind`` returned, building it on the first call only."""
    if kind not in _BUILT:
        from finetune.deploy import gguf

        builder = {"f16": gguf.build_f16, "q8_0": gguf.build_q8_0, "q4_k_m": gguf.build_q4_k_m}[kind]
        _BUILT[kind] = builder(pack_dir, root / kind, NullProgress(), load_settings())
    return _BUILT[kind]

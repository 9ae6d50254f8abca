"""Load a script that is not a package module (a benchmark, a dataset's build.py) by its path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: Path, name: str) -> ModuleType:
    """The module ``path`` defines, registered as ``name`` while it runs (dataclasses look their
    module up in ``sys.modules`` while the class is built) and unregistered if it fails."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module

"""The data Ladder itself ships and reads at run time: the built-in suites, the general
instruction set mixed into training, the demo scenarios.

Its source is the repository's top-level ``datasets/`` folder. The folder cannot be imported
as ``datasets`` (an ``__init__.py`` there would shadow Hugging Face ``datasets``, which ragas
imports), so the packaging maps it to the import name ``ladder_datasets`` (``package-dir`` in
pyproject.toml): a wheel installs it as ``site-packages/ladder_datasets/``, and an editable
install points that name at the checkout's ``datasets/``. ``datasets_dir`` asks the import
system where that package is, so every reader works the same from a checkout and from an
installed wheel.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from assistant.errors import ConfigError

PACKAGE = "ladder_datasets"


def datasets_dir() -> Path:
    """The folder holding ``suites/``, ``general/`` and ``demo/``.

    ``ladder_datasets`` has no ``__init__.py`` (its source folder must not get one), so it is a
    namespace package. ``importlib.resources.files`` on a namespace package returns a
    ``MultiplexedPath``, which is no ``Path`` and which refuses the placeholder entry that
    setuptools' editable finder puts on a namespace package's path; the package's search
    locations are the plain answer: its folder on disk.
    """
    spec = importlib.util.find_spec(PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    for location in locations or []:
        if Path(location).is_dir():
            return Path(location)
    raise ConfigError(
        f"Ladder's own data (the package {PACKAGE}) is not installed",
        hint="reinstall Ladder: `pip install -e .` in a checkout (`make setup` does it), "
        "or `pip install` the wheel",
    )


def builtin_suites() -> dict[str, Path]:
    """The suites shipped with Ladder (``datasets/suites/<name>.yaml``), by name."""
    return {path.stem: path for path in sorted((datasets_dir() / "suites").glob("*.yaml"))}

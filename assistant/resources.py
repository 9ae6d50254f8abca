"""The data Ladder itself ships and reads at run time: the built-in suites, the general
instruction set mixed into training, the demo scenarios.

They live in the repository's top-level ``datasets/`` folder. ``datasets_dir`` is the one
place that finds it, so that every reader works the same from a checkout and from an
installed wheel.
"""

from __future__ import annotations

from pathlib import Path


def datasets_dir() -> Path:
    """The folder holding ``suites/``, ``general/`` and ``demo/``."""
    return Path(__file__).resolve().parents[1] / "datasets"

"""pyproject.toml's ranges and constraints.txt's pins agree, and every range has a ceiling,
so a fresh install cannot silently pick up a new major version (typer 0.2x changed which
exception classes a usage error raises, and older typer broke with click 8.2)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"constraints.txt: {line!r} is not a name==version pin"
            pins[canonicalize_name(name)] = pinned
    return pins


def test_every_dependency_but_torch_has_an_upper_bound() -> None:
    unbounded = []
    for requirement in _requirements():
        if requirement.name == "torch":  # the Makefile installs torch==2.13.0 (CPU) first
            continue
        operators = {spec.operator for spec in requirement.specifier}
        if not operators & {"<", "<=", "==", "~="}:
            unbounded.append(str(requirement))
    assert unbounded == []


def test_constraints_pin_every_dependency_inside_its_range() -> None:
    pins = _pins()
    outside, missing = [], []
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        if name == "torch":
            assert name not in pins  # torch stays with the Makefile
            continue
        if name not in pins:
            missing.append(name)
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            outside.append(f"{requirement} but constraints.txt pins {pins[name]}")
    assert missing == [] and outside == []


def test_typer_floor_is_one_that_refuses_a_missing_argument() -> None:
    typer = next(r for r in _requirements() if r.name == "typer")
    assert not typer.specifier.contains("0.17.0")  # runs `ladder ask` with question=None
    assert typer.specifier.contains("0.18.0") and typer.specifier.contains("0.29.2")

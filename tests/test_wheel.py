"""An installed wheel works: built from the sources, installed into a fresh venv outside the
checkout, ``ladder --help``, ``ladder doctor`` and ``ladder eval`` of a built-in suite run there
and find Ladder's own data as the package ``ladder_datasets``.

The venv reuses this environment's installed dependencies through a ``.pth`` file naming its
site-packages: a plain path line in a ``.pth`` file does not run the ``.pth`` files in that
folder, so the editable install's finder (which maps ``assistant`` etc. to the checkout) stays
off, and every ``import`` of Ladder's packages resolves to the wheel's copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "evaluation", "finetune", "ui")
# What the build reads: the metadata files and the folders that become packages.
SOURCES = ("pyproject.toml", "setup.py", "README.md", *PACKAGES, "datasets")


def _copy_sources(target: Path) -> None:
    """Build from a copy, so that the build's build/ and *.egg-info never land in the checkout."""
    target.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)


def _run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _checkout_packages() -> set[str]:
    return {
        ".".join(init.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for init in (ROOT / package).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def _wheel_packages(names: list[str]) -> set[str]:
    return {".".join(Path(name).parent.parts) for name in names if name.endswith("/__init__.py")}


def test_an_installed_wheel_runs_help_doctor_and_a_builtin_suite(tmp_path: Path) -> None:
    _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LADDER_", "PYTHON"))}
    env["COLUMNS"] = "300"  # rich would wrap the long tmp paths at 80 columns
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "--quiet", "-w", str(dist), str(tmp_path / "src")], tmp_path, env)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("ladder-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert _wheel_packages(names) == _checkout_packages()
    # The data ships under its own import name, never as a top-level `datasets` (Hugging Face's).
    assert not [n for n in names if n.startswith("datasets/")]
    for data in ("suites/demo_qa.yaml", "suites/demo_qa.jsonl", "suites/demo_exam/val/demo_history_val.csv",
                 "general/general_instructions.jsonl", "demo/decisions/ticket_routing.yaml",
                 "demo/kb/products_zh.md", "demo/train/ticket_routing_train.jsonl"):  # fmt: skip
        assert f"ladder_datasets/{data}" in names
    assert not [n for n in names if n.startswith("ladder_datasets/") and n.endswith(".py")]

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).stdout.strip())  # fmt: skip
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "ladder_test_dependencies.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    # --ignore-installed: this environment's (editable) ladder is visible through the .pth; pip
    # must neither count it as installed nor try to remove it.
    installed = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                      "--quiet", str(wheel)], tmp_path, env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    env["LADDER_HOME"] = str(home)
    where = _run([str(python), "-c", "import json, sys, assistant, ui.cli.app\n"
                  "from assistant.resources import datasets_dir\n"
                  "print(json.dumps([assistant.__file__, ui.cli.app.__file__, str(datasets_dir()),\n"
                  "                  [m for m in sys.modules if 'editable' in m]]))"], work, env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assistant_file, app_file, data_dir, editable = json.loads(where.stdout)
    assert assistant_file == str(site / "assistant" / "__init__.py")
    assert app_file == str(site / "ui" / "cli" / "app.py")
    assert data_dir == str(site / "ladder_datasets") and editable == []

    ladder = str(venv / "bin" / "ladder")
    shown = _run([ladder, "--help"], work, env)
    assert shown.returncode == 0, shown.stderr
    assert "Usage: ladder" in shown.stdout and "eval" in shown.stdout and "doctor" in shown.stdout

    doctor = _run([ladder, "doctor"], work, env)
    # An empty home has no pack: a warning, not a failure (exit 1 is for an unwritable home or
    # a missing package).
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"{home} (env)" in doctor.stdout and str(python) in doctor.stdout
    # (a missing package would exit 1; the packs missing here are warnings with the pull command)
    assert "no language model pack installed" in doctor.stdout
    assert "ladder models pull multilingual-e5-small" in doctor.stdout

    listed = _run([ladder, "suite", "list"], work, env)
    assert listed.returncode == 0, listed.stderr
    assert f"files: {site / 'ladder_datasets' / 'suites'}" in listed.stdout and "demo_qa" in listed.stdout

    evaluated = _run([ladder, "eval", "demo_qa", "--model", "fake", "--report", "run.json"], work, env)
    # The fake model misses the suite's token_f1 threshold: exit 1, the checkout's numbers.
    assert evaluated.returncode == 1, evaluated.stdout + evaluated.stderr
    assert "threshold missed: prompt: token_f1 = 0.203 is below the threshold 0.5" in evaluated.stderr
    assert "13 records · 13 model calls" in evaluated.stdout
    report = json.loads((work / "run.json").read_text(encoding="utf-8"))
    assert report["suite_path"] == str(site / "ladder_datasets" / "suites" / "demo_qa.yaml")
    assert (home / "ladder.db").is_file()

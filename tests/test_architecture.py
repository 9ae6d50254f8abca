"""The layer contract in ``.importlinter`` holds, and breaks when an import points up or closes a circle.

``lint-imports`` runs in ``make lint``; these tests also prove it is not a contract that cannot
fail: each plants one bad import in a copy of the packages and expects that contract to break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "evaluation", "finetune", "ui")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    # The copy comes first on the path: grimp builds the graph from the modules Python finds.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [*command, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def copy_of_the_packages(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_checkout_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        # floor 1 reaching up to the faces
        ("assistant/errors.py", "import ui.cli.app", "assistant is not allowed to import ui"),
        # finetune reaching up to evaluation
        ("finetune/store.py", "import evaluation.runner", "finetune is not allowed to import evaluation"),
        # evaluation outside decide/ training a model
        ("evaluation/runner.py", "import finetune.train.run", "evaluation.runner -> finetune.train.run"),
        # a circle inside one package
        (
            "assistant/knowledge/index.py",
            "import assistant.knowledge.kb",
            "No cycles are allowed in assistant.knowledge",
        ),
    ],
    ids=["upward-import", "finetune-up", "evaluation-trains", "circle"],
)
def test_a_planted_bad_import_breaks_the_contract(
    tmp_path: Path, module: str, planted: str, broken: str
) -> None:
    root = copy_of_the_packages(tmp_path)
    path = root / module
    path.write_text(
        path.read_text(encoding="utf-8") + f"\n{planted}  # planted by the test\n", encoding="utf-8"
    )
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout, result.stdout

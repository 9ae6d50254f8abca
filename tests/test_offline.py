"""Offline by default: entry points set the privacy env, and the main flows open no
non-loopback socket (checked by an audit-hook guard in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.offline import PRIVACY_ENV
from tests.conftest import REAL_HOME, TEST_PACK

ROOT = Path(__file__).resolve().parents[1]


def run_guarded(
    code_or_module: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PRIVACY_ENV}
    return subprocess.run(
        [sys.executable, "-m", "tests.socket_guard", *code_or_module],
        cwd=ROOT, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_guard_refuses_outside_connections_and_dns() -> None:
    probe = (
        "import socket\n"
        "for target in [('10.255.255.1', 80), ('pypi.org', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=1)\n"
        "    except ConnectionError as exc:\n"
        "        print('refused', target[0], 'guard' in str(exc))\n"
    )
    script = ROOT / "tests" / "_probe_tmp.py"
    script.write_text(probe)
    try:
        result = run_guarded(["tests._probe_tmp"])
    finally:
        script.unlink()
    assert "refused 10.255.255.1 True" in result.stdout
    assert "refused pypi.org True" in result.stdout
    assert result.stderr.count("SOCKET-GUARD:") == 2


def test_guard_allows_loopback() -> None:
    import tests.socket_guard as guard

    assert guard._is_loopback("127.0.0.1") and guard._is_loopback("::1") and guard._is_loopback("localhost")
    assert not guard._is_loopback("8.8.8.8") and not guard._is_loopback("huggingface.co")


def test_cli_entry_point_sets_privacy_env() -> None:
    names = list(PRIVACY_ENV)
    code = f"import ui.cli.app, os, json; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    clean = {k: v for k, v in os.environ.items() if k not in PRIVACY_ENV}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    import json

    values = json.loads(out.stdout)
    assert values["HF_HUB_OFFLINE"] == "1"
    assert values["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert values["RAGAS_DO_NOT_TRACK"] == "true"
    assert values["ANONYMIZED_TELEMETRY"] == "False"
    assert values["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"


def test_privacy_env_is_set_before_transformers_reads_it() -> None:
    code = "import assistant\nfrom huggingface_hub import constants\nprint(constants.HF_HUB_OFFLINE)\n"
    clean = {k: v for k, v in os.environ.items() if k not in PRIVACY_ENV}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert out.stdout.strip() == "True"


@pytest.mark.slow
def test_ask_and_pack_load_open_no_outside_socket(real_pack_dir: Path) -> None:
    result = run_guarded(
        [
            "ui.cli.app",
            "ask",
            "What is the capital of France?",
            "--model",
            TEST_PACK,
            "--max-tokens",
            "12",
        ],
        env={"LADDER_HOME": str(REAL_HOME)},
    )
    assert result.returncode == 0, result.stderr
    assert "SOCKET-GUARD" not in result.stderr
    assert f"model {TEST_PACK}" in result.stdout
    assert "Paris" in result.stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "PASSIVE 30000"),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE -"),
        ({"GOMP_SPINCOUNT": "1000000"}, "- 1000000"),
    ],
)
def test_openmp_threads_spin_briefly_then_sleep_unless_the_user_chose(
    given: dict[str, str], expected: str
) -> None:
    """Spinning OpenMP threads on cores another process keeps busy made an answer 3x slower
    (benchmarks/threads.py); the policy must be in the environment before torch loads."""
    code = (
        "import ui.cli.app, os, sys; assert 'torch' not in sys.modules; "
        "print(os.environ.get('OMP_WAIT_POLICY', '-'), os.environ.get('GOMP_SPINCOUNT', '-'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **given}, capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected

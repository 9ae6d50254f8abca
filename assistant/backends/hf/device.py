"""Where and in which dtype a local model runs: the device from the ``device`` setting, and
for ``dtype: auto`` whichever of float32 and bfloat16 this machine runs faster (measured once
per CPU kind and remembered). Used by the backend and by fine-tuning."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        from assistant.errors import ConfigError

        raise ConfigError("device=cuda but no CUDA device is available", hint="use device=auto or cpu")
    return setting


def _measure_matmul(dtype: torch.dtype, repeats: int = 12) -> float:
    """Seconds for a decoder-sized matmul in ``dtype`` (the hot loop of generation)."""
    x = torch.randn(16, 896, dtype=dtype)
    w = torch.randn(896, 4864, dtype=dtype)
    torch.matmul(x, w)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(x, w)
    return time.perf_counter() - start


# What decides whether bf16 is fast here: the CPU, the kernels torch and its matmul
# libraries may use (capped by these variables, as the numerics reruns do), torch, threads.
_ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def _cpu_model() -> str:
    """The CPU's model name (``platform.processor()`` says only "x86_64" on Linux)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_profile_key() -> str:
    caps = ",".join(f"{name}={os.environ[name]}" for name in _ISA_VARIABLES if os.environ.get(name))
    return (f"{_cpu_model()}|{torch.backends.cpu.get_cpu_capability()}|{caps}|torch {torch.__version__}|"
            f"{torch.get_num_threads()}t")  # fmt: skip


def pick_dtype(setting: str, device: str, home: Path) -> torch.dtype:
    """fp32 or bf16 as configured; ``auto`` picks whichever this machine runs faster.

    On CUDA bf16 wins whenever it is supported. On CPU it depends on the instruction set
    (AVX-512 BF16 / AMX make bf16 fast; plain AVX2 emulates it and is slower), so we
    measure once and remember the answer in ``LADDER_HOME/cpu_profile.json``, keyed by the
    CPU model and the instruction sets in use: a home moved to another CPU kind, or a run
    with the libraries capped to AVX2, measures again. Each dtype's time is the best of three
    rounds, so another process's burst does not decide it.
    """
    if setting == "float32":
        return torch.float32
    if setting == "bfloat16":
        return torch.bfloat16
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    profile_path = home / "cpu_profile.json"
    key = _cpu_profile_key()
    try:
        profile = json.loads(profile_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        profile = {}
    if profile.get("key") != key and key in _MEASURED:  # this process measured it for another home
        profile = _MEASURED[key]
        home.mkdir(parents=True, exist_ok=True)
        profile_path.write_text(json.dumps(profile, indent=2), encoding="utf-8")
    if profile.get("key") != key:
        fp32 = min(_measure_matmul(torch.float32) for _ in range(3))
        bf16 = min(_measure_matmul(torch.bfloat16) for _ in range(3))
        profile = {"key": key, "float32_s": fp32, "bfloat16_s": bf16,
                   "faster": "bfloat16" if bf16 < fp32 * 0.9 else "float32"}  # fmt: skip
        home.mkdir(parents=True, exist_ok=True)
        profile_path.write_text(json.dumps(profile, indent=2), encoding="utf-8")
    _MEASURED[key] = profile
    return torch.bfloat16 if profile["faster"] == "bfloat16" else torch.float32


# The profile per CPU profile key, once this process has measured or read it: another
# LADDER_HOME on the same machine gets a copy instead of a new measurement.
_MEASURED: dict[str, dict[str, object]] = {}

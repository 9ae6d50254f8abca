"""Rerun the numerics tests under every other CPU capability this machine supports.

    python -m tests.cpu_capabilities [pytest args...]     (default: -q -m numerics)

The suite's main run exercises the machine's own kernels. An AVX-512 machine can also run
the AVX2 and plain (``default``) kernels, and an AVX2 machine the plain ones, so one
``make test`` proves the numerics on the CPU kinds our users have. Each capability runs
in a fresh pytest process because the choice is read once, when torch loads:

- ``ATEN_CPU_CAPABILITY`` picks ATen's own vectorised kernels (softmax, norms, reductions);
- ``ONEDNN_MAX_CPU_ISA`` and ``MKL_ENABLE_INSTRUCTIONS`` cap the matmul libraries, which
  detect the CPU on their own (without them an "avx2" run would still do bf16 matmuls with
  AVX-512 BF16 instructions, and ``dtype: auto`` would still pick bf16).
"""

from __future__ import annotations

import os
import subprocess
import sys

# capability -> the environment that makes torch and its libraries use only that
CAPABILITIES: dict[str, dict[str, str]] = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}  # fmt: skip
ORDER = ["avx512", "avx2", "default"]


def native() -> str:
    """The capability torch picks on this machine by itself (lower-cased, e.g. ``avx512``)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k not in CAPABILITIES["avx2"]}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    name = out.stdout.strip().lower()
    return "avx512" if name.startswith("avx512") else name


def others(own: str) -> list[str]:
    """The capabilities below ``own`` (a machine runs every kernel set older than its own)."""
    if own not in ORDER:  # not x86 (e.g. arm64's "NO AVX" / "sve"): nothing to emulate
        return []
    return ORDER[ORDER.index(own) + 1 :]


def main(argv: list[str]) -> int:
    args = argv or ["-q", "-m", "numerics"]
    own = native()
    rest = others(own)
    print(f"cpu capability: {own}; numerics tests again under: {', '.join(rest) or 'none'}", flush=True)
    failed = []
    for capability in rest:
        print(f"--- ATEN_CPU_CAPABILITY={capability} ---", flush=True)
        env = {**os.environ, **CAPABILITIES[capability]}
        if subprocess.run([sys.executable, "-m", "pytest", *args], env=env).returncode != 0:
            failed.append(capability)
    if failed:
        print(f"numerics tests failed under: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

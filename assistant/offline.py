"""Offline-and-private defaults, applied before any heavy import.

Every entry point (CLI main, UI apps, the server, ``conftest.py``) imports this module
first. The variables must be set before ``transformers``/``huggingface_hub`` are imported:
they read them once at import time, so setting them later has no effect.

``setdefault`` is deliberate: a user who really wants the hub can export
``HF_HUB_OFFLINE=0`` and we respect it.
"""

from __future__ import annotations

import os

PRIVACY_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "ANONYMIZED_TELEMETRY": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "TOKENIZERS_PARALLELISM": "false",
}


# OpenMP threads that finish their share of a parallel region spin, waiting for the next one
# (libgomp, in the Linux torch wheels: 300,000 turns, then sleep). On cores another process
# keeps busy, a spinning thread takes the core its sibling needs: qwen2.5-coder-0.5b took
# 11.8 s per answer with 2 threads beside 4 busy loops, 3.9 s sleeping at once (PASSIVE).
# PASSIVE alone costs idle cores the wake-up on every region (1.03 s against 0.82 s), so
# threads spin briefly and then sleep: 0.83 s idle, 4.3 s beside 4 busy loops (chosen on
# smollm2-135m, checked on qwen; benchmarks/threads.py). Read once, when torch loads its
# OpenMP runtime, so it is set here, before any heavy import; a user who set either
# variable keeps their choice.
WAIT_POLICY_ENV: dict[str, str] = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "GOMP_SPINCOUNT": "30000",
}


def apply_privacy_env() -> None:
    """Set the offline/telemetry variables (and the thread wait policy) unless the user
    already chose a value."""
    for key, value in PRIVACY_ENV.items():
        os.environ.setdefault(key, value)
    if not any(key in os.environ for key in WAIT_POLICY_ENV):
        os.environ.update(WAIT_POLICY_ENV)


def offline_state() -> dict[str, str | None]:
    """The current value of each privacy variable, for ``ladder doctor``."""
    return {key: os.environ.get(key) for key in PRIVACY_ENV}


apply_privacy_env()

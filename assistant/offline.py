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


# OpenMP threads that finish their share of a parallel region spin, waiting for the next one.
# On a machine whose cores are busy with another process, a spinning thread takes the core
# its sibling needs: smollm2-135m answered in 11.9 s with 2 spinning threads on 2 loaded
# cores, 1.0 s with PASSIVE (0.5 s on idle cores either way; benchmarks/threads.py). Read
# once, when torch loads its OpenMP runtime, so it is set here, before any heavy import.
RUNTIME_ENV: dict[str, str] = {
    "OMP_WAIT_POLICY": "PASSIVE",
}


def apply_privacy_env() -> None:
    """Set the offline/telemetry variables (and the thread wait policy) unless the user
    already chose a value."""
    for key, value in {**PRIVACY_ENV, **RUNTIME_ENV}.items():
        os.environ.setdefault(key, value)


def offline_state() -> dict[str, str | None]:
    """The current value of each privacy variable, for ``ladder doctor``."""
    return {key: os.environ.get(key) for key in PRIVACY_ENV}


apply_privacy_env()

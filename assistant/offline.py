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


def apply_privacy_env() -> None:
    """Set the offline/telemetry variables unless the user already chose a value."""
    for key, value in PRIVACY_ENV.items():
        os.environ.setdefault(key, value)


def offline_state() -> dict[str, str | None]:
    """The current value of each privacy variable, for ``ladder doctor``."""
    return {key: os.environ.get(key) for key in PRIVACY_ENV}


apply_privacy_env()

"""``ladder finetune train | list | info | rm | export``, added to ``finetune_app``."""

from __future__ import annotations

import typer


def register_training(app: typer.Typer) -> None:
    """Add the training and adapter commands to the ``ladder finetune`` app."""

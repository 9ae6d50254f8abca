"""``ladder finetune``: prepare data, synthesize with a teacher, train LoRA adapters, manage them.

Data commands (prepare, synthesize) live here; training and adapter commands (train, list,
info, rm, export) live in ``assistant.cli_train`` and are added to the same app at the end.
Heavy imports (torch, transformers, peft, trl) happen inside the commands.
"""

from __future__ import annotations

import typer

finetune_app = typer.Typer(
    help="Fine-tuning: prepare data, train LoRA adapters, manage adapters.", no_args_is_help=True
)


def _register_training() -> None:
    from assistant.cli_train import register_training

    register_training(finetune_app)


_register_training()

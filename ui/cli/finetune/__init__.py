"""``ladder finetune``: the data commands (prepare, synthesize) live in ``data.py``, the training
and adapter commands (train, list, info, rm, export) in ``train.py``."""

from __future__ import annotations

import typer

from ui.cli.finetune.data import prepare_cmd, synthesize_cmd
from ui.cli.finetune.train import register_training

finetune_app = typer.Typer(
    help="Fine-tuning: prepare data, train LoRA adapters, manage adapters.", no_args_is_help=True
)
finetune_app.command("prepare")(prepare_cmd)
finetune_app.command("synthesize")(synthesize_cmd)
register_training(finetune_app)

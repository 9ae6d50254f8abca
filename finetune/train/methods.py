"""What a training run trains, chosen by ``TrainConfig.peft`` (``--peft``).

``build_model`` loads the base model and makes trainable what the method trains:

- ``lora`` (default): LoRA on every linear layer (``target_modules``);
- ``prompt-tuning``: additive prompt tuning (peft ``PromptTuningConfig``);
- ``last-layers``: LoRA on the last layers only (peft ``layers_to_transform``);
- ``full``: every weight of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from assistant.backends.hf.warnings import renamed_property_warnings_off
from assistant.errors import ConfigError, ModelNotFoundError
from finetune.train.config import TrainConfig, lora_config


def load_base(base_dir: Path, config: TrainConfig, dtype: torch.dtype) -> tuple[Any, Any]:
    """The base model (no cache, gradient checkpointing if asked) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"could not load a causal LM from {base_dir}: {exc}") from None
    model.config.use_cache = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model, tokenizer


def build_model(base_dir: Path, config: TrainConfig, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """The model to train (its trainable part initialised from ``config.seed``) and its tokenizer."""
    if config.peft != "lora":
        raise ConfigError(f"--peft {config.peft} is not implemented yet", hint="use --peft lora")
    from peft import get_peft_model

    model, tokenizer = load_base(base_dir, config, dtype)
    torch.manual_seed(config.seed)
    lora = lora_config(config.rank, config.alpha, config.dropout, config.target_modules)
    with renamed_property_warnings_off():
        model = get_peft_model(model, lora).to(device)
    return model, tokenizer

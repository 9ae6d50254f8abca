"""What a training run trains, chosen by ``TrainConfig.peft`` (``--peft``).

``build_model`` loads the base model and makes trainable what the method trains:

- ``lora`` (default): LoRA on every linear layer (``target_modules``);
- ``prompt-tuning``: additive prompt tuning (peft ``PromptTuningConfig``): ``num_virtual_tokens``
  trained embeddings put before every input, the model itself frozen. They start as the
  embeddings of ``PROMPT_INIT_TEXT`` (repeated to length), not at random: Lester et al. (2021)
  found random initialisation trains worst, most of all on small models, and a vocabulary
  initialisation keeps the virtual tokens where the model's attention already knows its way;
  the text is task-neutral so one initialisation serves every task;
- ``last-layers``: LoRA on the last ``last_layers`` decoder layers only (peft
  ``layers_to_transform``); by default a quarter of them. The top layers are where a model's
  features turn task- and format-specific, and the backward pass stops at the lowest trained
  layer, so a quarter trains in about five eighths of LoRA's time per step with a quarter of
  its weights;
- ``full``: every weight of the model, no PEFT wrapper (``publish`` writes a whole model).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from assistant.backends.hf.warnings import renamed_property_warnings_off
from assistant.errors import ModelNotFoundError
from finetune.train.config import TrainConfig, lora_config

# Where prompt tuning's virtual tokens start (their embeddings, repeated to num_virtual_tokens).
PROMPT_INIT_TEXT = "Read the request carefully and answer it exactly as the instructions ask."


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


def last_layer_indices(n_layers: int, last_layers: int | None) -> list[int]:
    """The decoder layers ``last-layers`` trains: the last ``last_layers`` (default a quarter)."""
    count = last_layers if last_layers is not None else max(1, math.ceil(n_layers / 4))
    count = min(count, n_layers)
    return list(range(n_layers - count, n_layers))


def linear_module_names(model: Any) -> list[str]:
    """The names of the linear layers that ``all-linear`` means (every ``nn.Linear`` but the
    output head), as peft's ``target_modules`` list."""
    head = model.get_output_embeddings()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    }
    return sorted(names)


def build_model(base_dir: Path, config: TrainConfig, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """The model to train (its trainable part initialised from ``config.seed``) and its tokenizer."""
    model, tokenizer = load_base(base_dir, config, dtype)
    torch.manual_seed(config.seed)
    if config.peft == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model.to(device), tokenizer
    from peft import get_peft_model

    if config.peft == "prompt-tuning":
        peft_config = prompt_tuning_config(config.num_virtual_tokens)
    else:
        layers, targets = None, config.target_modules
        if config.peft == "last-layers":
            layers = last_layer_indices(int(model.config.num_hidden_layers), config.last_layers)
            if targets.strip() == "all-linear":  # peft takes layers_to_transform with names only
                targets = ",".join(linear_module_names(model))
        peft_config = lora_config(
            config.rank, config.alpha, config.dropout, targets, layers_to_transform=layers
        )
    with renamed_property_warnings_off():
        model = get_peft_model(model, peft_config).to(device)
    if config.peft == "prompt-tuning":
        _init_prompt_from_text(model, tokenizer, PROMPT_INIT_TEXT)
        model.register_forward_pre_hook(_keep_no_virtual_logits, with_kwargs=True)
    return model, tokenizer


def prompt_tuning_config(num_virtual_tokens: int) -> Any:
    from peft import PromptTuningConfig

    # RANDOM here, then the text's embeddings copied in (_init_prompt_from_text): peft's TEXT
    # init would write the tokenizer's local path into adapter_config.json.
    return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens)


def _init_prompt_from_text(model: Any, tokenizer: Any, text: str) -> None:
    """Start the virtual tokens as the embeddings of ``text``'s tokens, repeated to length."""
    adapter = model.active_adapter
    embedding = model.prompt_encoder[adapter].embedding
    n = embedding.weight.shape[0]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = (ids * math.ceil(n / len(ids)))[:n]
    words = model.get_input_embeddings().weight
    with torch.no_grad():
        embedding.weight.copy_(words[torch.tensor(ids, device=words.device)].to(embedding.weight.dtype))


def _keep_no_virtual_logits(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Prompt tuning puts its virtual tokens before the input, so the model's output has that
    many more positions than the batch's boolean ``logits_to_keep`` mask: the mask is widened
    with the virtual positions, never kept (they have no target)."""
    keep = kwargs.get("logits_to_keep")
    if isinstance(keep, torch.Tensor) and keep.dtype == torch.bool and keep.dim() == 2:
        virtual = module.active_peft_config.num_virtual_tokens
        pad = torch.zeros((keep.shape[0], virtual), dtype=torch.bool, device=keep.device)
        kwargs = {**kwargs, "logits_to_keep": torch.cat([pad, keep], dim=1)}
    return args, kwargs


def method_details(config: TrainConfig, model: Any) -> dict[str, Any]:
    """The method's own settings for the manifest (``peft``): what a reader needs to redo it."""
    if config.peft == "full":
        return {}
    if config.peft == "prompt-tuning":
        return {"num_virtual_tokens": config.num_virtual_tokens, "init_text": PROMPT_INIT_TEXT}
    details: dict[str, Any] = {
        "rank": config.rank,
        "alpha": config.alpha,
        "target_modules": config.target_modules,
    }
    if config.peft == "last-layers":
        n_layers = int(model.get_base_model().config.num_hidden_layers)
        details.update(layers=last_layer_indices(n_layers, config.last_layers), of_layers=n_layers)
    return details

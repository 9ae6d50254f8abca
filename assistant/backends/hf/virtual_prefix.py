"""A prompt-tuning adapter at inference: its virtual tokens as a KV-cache prefix of the base model.

Prompt tuning (peft ``PromptTuningConfig``) puts ``n`` trained embeddings before every input;
the model itself is unchanged. peft's ``PeftModel`` does that by prepending the embeddings in
``forward``, which breaks what the local backend relies on: explicit position ids (peft drops
them), 4D masks (peft concatenates a 2D one), and a KV cache passed back in (peft prepends the
virtual tokens again). So the backend runs the base model itself, with the virtual tokens as a
cache prefix: the base model run once over the embeddings (positions ``0..n-1``), whose keys and
values every forward pass starts from. That is exactly what prompt tuning computes (a virtual
token sees only the virtual tokens before it).

``attach_virtual_prefix(model, embeddings)`` installs a forward pre-hook that keeps the caller's
view free of the prefix: callers pass masks, position ids, cache positions and caches as for the
plain model, and the hook puts the prefix in front (an empty or missing cache is filled with it,
masks gain ``n`` leading columns, positions move up by ``n``). Caches the model returns hold the
prefix, so a cache passed back in is used as it is. ``generate`` works the same way: it hands the
model an empty cache, which the hook fills.
"""

from __future__ import annotations

from typing import Any

import torch

CACHE_KEYS = ("cache", "past_key_values")  # transformers 5 renamed past_key_values to cache


def prefix_key_values(model: Any, embeddings: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (keys, values) of the virtual tokens ``embeddings`` ``[n, hidden]``."""
    with torch.inference_mode():
        output = model(inputs_embeds=embeddings.unsqueeze(0), use_cache=True, logits_to_keep=1)
    cache = next(getattr(output, k) for k in CACHE_KEYS if getattr(output, k, None) is not None)
    return [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]


def attach_virtual_prefix(model: Any, embeddings: torch.Tensor) -> Any:
    """Make ``model`` (a transformers causal LM) run as if ``embeddings`` came before every input."""
    prefix = prefix_key_values(model, embeddings.to(model.device, model.dtype))
    n = prefix[0][0].shape[2]

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        kwargs = dict(kwargs)
        if args:  # input_ids given positionally
            kwargs["input_ids"], args = args[0], args[1:]
        source = kwargs.get("input_ids")
        if source is None:
            source = kwargs["inputs_embeds"]
        batch = int(source.shape[0])
        key = next((k for k in CACHE_KEYS if kwargs.get(k) is not None), CACHE_KEYS[0])
        cache = kwargs.get(key)
        if cache is None or cache.get_seq_length() == 0:
            if cache is None:
                from transformers import DynamicCache

                cache = DynamicCache()
            for index, (keys, values) in enumerate(prefix):
                shape = (batch, *keys.shape[1:])
                cache.update(keys.expand(shape), values.expand(shape), index)
            kwargs[key] = cache
        mask = kwargs.get("attention_mask")
        if mask is not None:
            kwargs["attention_mask"] = _with_prefix_columns(mask, n)
        for name in ("position_ids", "cache_position"):
            if kwargs.get(name) is not None:
                kwargs[name] = kwargs[name] + n
        return args, kwargs

    model.register_forward_pre_hook(hook, with_kwargs=True)
    model.virtual_tokens = n
    return model


def _with_prefix_columns(mask: torch.Tensor, n: int) -> torch.Tensor:
    """``mask`` with ``n`` leading key columns that every query may attend to."""
    if mask.dim() == 2:
        ones = torch.ones((mask.shape[0], n), dtype=mask.dtype, device=mask.device)
        return torch.cat([ones, mask], dim=1)
    shape = (*mask.shape[:-1], n)
    if mask.dtype == torch.bool:
        allowed = torch.ones(shape, dtype=torch.bool, device=mask.device)
    else:  # an additive float mask: 0 where attention is allowed
        allowed = torch.zeros(shape, dtype=mask.dtype, device=mask.device)
    return torch.cat([allowed, mask], dim=-1)

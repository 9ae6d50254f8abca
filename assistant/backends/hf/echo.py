"""Raw text completion with token log-probabilities, for ``ladder serve``'s ``/v1/completions``.

What OpenAI's legacy completions endpoint (and vLLM's) returns: the prompt is raw text (no
chat template), ``max_tokens`` new tokens follow it (0: none, only the prompt is scored), and
with ``logprobs`` every returned token carries its log-probability, its character offset
(from the prompt's start) and the most likely alternatives at its position. With ``echo`` the prompt's
own tokens come first. That is how lm-evaluation-harness's ``local-completions`` scores a
multiple-choice option over an endpoint: send prompt + option with ``echo``, and sum the
logprobs of the tokens after the prompt (``assistant.backends.openai_compat``).

The numerics are ``scoring.echo_token_logprobs`` (one forward pass per text, the prompt shared
by a request's texts run once). A token's text is the span of the input it covers, up to where
the next token starts, so the tokens joined give back the text exactly and the offsets rise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from assistant.backends.base import trim_at_stop
from assistant.backends.hf.scoring import echo_token_logprobs
from assistant.errors import CapabilityError


@dataclass
class TextCompletion:
    """One choice of a completions response: ``text`` is the prompt (with ``echo``) plus what
    was generated; the lists hold one entry per returned token."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float | None] = field(default_factory=list)
    text_offset: list[int] = field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = field(default_factory=list)


def token_spans(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (no special tokens, as exam scoring tokenizes) and where each
    token starts in it; starts never go down (byte pieces of one character share a start)."""
    if not getattr(tokenizer, "is_fast", False):
        raise CapabilityError("this model's tokenizer gives no character offsets, so it cannot echo logprobs")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts: list[int] = []
    for start, _end in encoded["offset_mapping"]:
        starts.append(max(start, starts[-1]) if starts else 0)
    return list(encoded["input_ids"]), starts


def _generate(
    backend: Any, ids: list[int], max_tokens: int, temperature: float, seed: int | None
) -> list[int]:
    """Up to ``max_tokens`` new token ids after ``ids`` (greedy at temperature 0), EOS excluded."""
    tokenizer = backend.tokenizer
    eos = list(getattr(backend, "_eos_ids", None) or [tokenizer.eos_token_id])
    kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": tokenizer.pad_token_id}
    kwargs["eos_token_id"] = eos
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=None)
        if seed is not None:
            torch.manual_seed(seed)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        output = backend.model.generate(input_ids=torch.tensor([ids], device=backend.device), **kwargs)
    new = output[0, len(ids) :].tolist()
    ended = next((i for i, token in enumerate(new) if token in eos), None)
    return new if ended is None else new[:ended]


def complete_texts(
    backend: Any,
    prompts: list[str],
    *,
    max_tokens: int,
    echo: bool,
    logprobs: int | None,
    temperature: float = 0.0,
    stop: list[str] | None = None,
    seed: int | None = None,
) -> list[TextCompletion]:
    """One ``TextCompletion`` per prompt from a local transformers backend (``HFLocalBackend``:
    ``model``, ``tokenizer``, ``device``). ``logprobs`` None: no token lists."""
    tokenizer = backend.tokenizer
    texts: list[str] = []
    finishes: list[str] = []
    prompt_counts: list[int] = []
    new_counts: list[int] = []
    for prompt in prompts:
        ids, _starts = token_spans(tokenizer, prompt)
        if max_tokens == 0:
            texts.append(prompt)
            finishes.append("length")
            new_counts.append(0)
        else:
            if not ids:
                ids = [int(tokenizer.bos_token_id or tokenizer.eos_token_id)]
            new = _generate(backend, ids, max_tokens, temperature, seed)
            generated = str(tokenizer.decode(new, skip_special_tokens=True))
            generated, stopped = trim_at_stop(generated, stop or [])
            texts.append(prompt + generated)
            finishes.append("stop" if stopped or len(new) < max_tokens else "length")
            new_counts.append(len(new))
        prompt_counts.append(len(ids))
    results = [
        TextCompletion(text if echo else text[len(prompt) :], finish, count, new)
        for prompt, text, finish, count, new in zip(
            prompts, texts, finishes, prompt_counts, new_counts, strict=True
        )
    ]
    if logprobs is None:
        return results
    spans = [token_spans(tokenizer, text) for text in texts]
    rows = [ids for ids, _ in spans]
    scorable = [i for i, row in enumerate(rows) if row]
    head_cache = backend.__dict__.setdefault("_head32_cache", {})
    # The last request's prefix, KV cache and logits: the next exam question of the same
    # subject shares its k-shot exemplars (``echo_token_logprobs``).
    prefix_store = backend.__dict__.setdefault("_echo_prefix", {})
    echoed = echo_token_logprobs(
        backend.model, [rows[i] for i in scorable], logprobs, backend.device, head_cache, prefix_store
    )
    scored = dict(zip(scorable, echoed, strict=True))
    for index, (result, prompt, text) in enumerate(zip(results, prompts, texts, strict=True)):
        ids, starts = spans[index]
        if not ids:
            continue
        chosen, top = scored[index]
        ends = [*starts[1:], len(text)]
        # Without echo only the tokens after the prompt come back; offsets still count from
        # the prompt's start, as OpenAI's do.
        first = 0 if echo else next((i for i, s in enumerate(starts) if s >= len(prompt)), len(ids))
        for i in range(first, len(ids)):
            result.tokens.append(text[starts[i] : ends[i]])
            result.token_logprobs.append(chosen[i])
            result.text_offset.append(starts[i])
            result.top_logprobs.append(_top_dict(tokenizer, top[i]) if chosen[i] is not None else None)
    return results


def _top_dict(tokenizer: Any, pairs: list[tuple[int, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for token_id, logprob in pairs:
        out.setdefault(str(tokenizer.decode([token_id])), logprob)
    return out


__all__ = ["TextCompletion", "complete_texts", "token_spans"]

"""Batched log-probability scoring for ``HFLocalBackend.score_choices``.

An exam scores hundreds of prompts that mostly share a prefix: the subject's header and,
k-shot, its exemplars. The machinery here spends the model's compute only on tokens that
change the answer:

- **Prefix reuse.** Rows are grouped by shared token prefix. A group whose prefix pays for
  itself runs it once, into a KV cache, and then only its rows' own suffixes.
- **Packed suffixes.** A group's suffixes go into one row, one after the other, with a 4D
  attention mask: each suffix sees the cached prefix and itself, causally, and nothing of
  its neighbours, and its position ids continue from the prefix as if it were alone. No
  padding at all. Rows are cut at ``pack_tokens`` suffix tokens, because masked-out
  attention is still computed and grows with the square of a row.
- **Last positions only.** Logits are computed only at the positions that are read (the
  last ``keep`` of each row or suffix), never the full vocabulary for every position.
- Rows without a shared prefix run whole, in length-sorted micro-batches whose cut points
  minimise padding plus a fixed cost per forward pass.
- **A float32 head.** Whatever the model's dtype, the final projection to the vocabulary
  (and the log-softmax after it) runs in float32. bf16 logits of magnitude 32-64 move in
  steps of 0.25, so log-probabilities taken from them land on a coarse grid and tie
  multiple-choice options; the body of the model may stay bf16, its last hidden states are
  projected with a float32 copy of the head's weights (``float32_head``).

The mixin needs ``model``, ``tokenizer``, ``device`` and ``settings.batch_size`` on the
backend that uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

_T = TypeVar("_T")

# What one more forward pass costs, in tokens of compute: small batches of similar length
# beat one batch padded to its longest row only when they save more padding than this.
_PASS_COST_TOKENS = 32


def common_prefix_len(a: list[int], b: list[int]) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def pack_by_budget(indices: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """``indices`` in order, cut into runs whose ``lengths`` sum to at most ``budget``
    (a longer single index gets a run of its own)."""
    runs: list[list[int]] = []
    used = budget + 1
    for index in indices:
        if used + lengths[index] > budget:
            runs.append([])
            used = 0
        runs[-1].append(index)
        used += lengths[index]
    return runs


@functools.cache
def _cache_name() -> str:
    """The forward keyword (and output field) of the KV cache: transformers 5.2x renamed
    ``past_key_values`` to ``cache`` and warns on the old name in every run. Looked up once."""
    from transformers.utils import generic

    return "cache" if hasattr(generic, "_rename_kwargs_for_bc") else "past_key_values"


@contextmanager
def float32_head(model: Any, cache: dict[str, Any]) -> Iterator[None]:
    """While inside, ``model``'s output projection returns float32 logits computed from a
    float32 copy of its weights (kept in ``cache`` for the next call).

    Only the head's ``forward`` is swapped, so whatever the architecture does after it
    (logit soft-capping, scaling) runs on the float32 logits too. A head that is already
    float32, or is not a plain ``nn.Linear`` (a LoRA-wrapped head), is left as it is.
    """
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if get_head is not None else None
    if head is None or type(head) is not torch.nn.Linear or head.weight.dtype == torch.float32:
        yield
        return
    # The version counter moves on in-place edits (a merged adapter), so the copy never goes stale.
    key = f"{head.weight.data_ptr()}:{tuple(head.weight.shape)}:{head.weight._version}"
    if cache.get("key") != key:
        cache.clear()
        cache["key"] = key
        cache["weight"] = head.weight.detach().float()
        cache["bias"] = None if head.bias is None else head.bias.detach().float()
    weight, bias = cache["weight"], cache["bias"]

    def forward32(hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(hidden.float(), weight, bias)

    vars(head)["forward"] = forward32  # an instance attribute shadows the class's forward
    try:
        yield
    finally:
        del head.forward  # back to the class's forward


class PrefixScoring:
    """``_score_rows`` and its helpers; see the module docstring."""

    model: Any
    tokenizer: Any
    device: str
    settings: Any
    # Reuse a shared prefix once it is this many tokens (a subject's 17-token C-Eval header
    # already pays); ``reuse_prefix = False`` scores every prompt whole.
    reuse_prefix: bool = True
    min_shared_prefix: int = 8
    # Suffix tokens per packed row; 0 = no packing (padded micro-batches after the prefix).
    pack_tokens: int = 256

    def _score_rows(
        self, rows: list[list[int]], keep: int, reduce: Callable[[torch.Tensor, list[int]], list[_T]]
    ) -> list[_T]:
        """``reduce(logits of the last keep positions, row indices)`` over all ``rows``;
        the results come back in the order of ``rows``."""
        cache = self.__dict__.setdefault("_head32_cache", {})
        with float32_head(self.model, cache):
            return self._score_rows_inner(rows, keep, reduce)

    def _score_rows_inner(
        self, rows: list[list[int]], keep: int, reduce: Callable[[torch.Tensor, list[int]], list[_T]]
    ) -> list[_T]:
        results: dict[int, _T] = {}
        whole: list[int] = []
        for prefix_len, members in self._prefix_groups(rows, keep):
            if prefix_len == 0:
                whole.extend(members)
                continue
            prefix = rows[members[0]][:prefix_len]
            cache = self._prefix_cache(prefix)
            if cache is None:  # a cache layout we do not expand (sliding window, ...)
                whole.extend(members)
                continue
            own = [len(r) - prefix_len for r in rows]
            if self.pack_tokens > 0:
                order = sorted(members, key=own.__getitem__)
                chunks = pack_by_budget(order, own, self.pack_tokens)
            else:
                chunks = self._micro_batches(members, own)
            for chunk in chunks:
                suffixes = [rows[i][prefix_len:] for i in chunk]
                if self.pack_tokens > 0:
                    logits = self._packed_logits(suffixes, keep, prefix_len, cache)
                else:
                    logits = self._last_logits(suffixes, keep, prefix=(prefix_len, cache))
                results.update(zip(chunk, reduce(logits, chunk), strict=True))
        for chunk in self._micro_batches(whole, [len(r) for r in rows]):
            logits = self._last_logits([rows[i] for i in chunk], keep)
            results.update(zip(chunk, reduce(logits, chunk), strict=True))
        return [results[i] for i in range(len(rows))]

    def _prefix_groups(self, rows: list[list[int]], keep: int) -> list[tuple[int, list[int]]]:
        """Rows grouped by shared token prefix: ``(prefix length, row indices)``; 0 = no reuse.

        Sorting the rows lexicographically puts rows with a common prefix next to each
        other; a run of neighbours becomes a group while adding a row does not shrink the
        tokens the group saves, ``(size - 1) * prefix``. Each row keeps at least ``keep``
        tokens of its own, so the positions whose logits are read are computed in the
        suffix pass.
        """
        if not self.reuse_prefix or len(rows) < 2:
            return [(0, list(range(len(rows))))]
        order = sorted(range(len(rows)), key=rows.__getitem__)
        groups: list[tuple[int, list[int]]] = []
        members, shared = [order[0]], len(rows[order[0]]) - keep
        for index in order[1:]:
            previous = rows[members[-1]]
            common = common_prefix_len(previous, rows[index])
            narrowed = min(shared, common, len(rows[index]) - keep)
            saved_now = (len(members) - 1) * shared
            if narrowed >= self.min_shared_prefix and len(members) * narrowed >= saved_now:
                members.append(index)
                shared = narrowed
            else:
                groups.append((shared if len(members) > 1 else 0, members))
                members, shared = [index], len(rows[index]) - keep
        groups.append((shared if len(members) > 1 else 0, members))
        return groups

    def _prefix_cache(self, prefix: list[int]) -> Any | None:
        """The KV cache of ``prefix`` (batch of one), or None if its layers are not plain."""
        with torch.inference_mode():
            output = self.model(
                input_ids=torch.tensor([prefix], device=self.device), use_cache=True, logits_to_keep=1
            )
        cache = getattr(output, _cache_name())
        return cache if _plain_cache(cache) else None

    def _micro_batches(self, indices: list[int], lengths: list[int]) -> list[list[int]]:
        """``indices`` in order of length, cut into batches of at most ``batch_size`` rows.

        The cut points minimise padded tokens plus ``_PASS_COST_TOKENS`` per forward pass
        (exactly, by dynamic programming over the sorted lengths): padding is compute thrown
        away, and each extra pass has a fixed cost of its own (weights streamed from memory,
        thread start-up), so a few tokens of padding are cheaper than one more pass.
        """
        order = sorted(indices, key=lengths.__getitem__)
        size = self.settings.batch_size
        # best[j]: cost of the first j rows; cut[j]: where the last batch of those starts.
        best, cut = [0] + [0] * len(order), [0] * (len(order) + 1)
        for end in range(1, len(order) + 1):
            width = lengths[order[end - 1]]
            best[end], cut[end] = min(
                (best[start] + (end - start) * width + _PASS_COST_TOKENS, start)
                for start in range(max(0, end - size), end)
            )
        batches: list[list[int]] = []
        end = len(order)
        while end > 0:
            batches.insert(0, order[cut[end] : end])
            end = cut[end]
        return batches

    @staticmethod
    def _cache_for(cache: Any, batch: int) -> Any:
        """A fresh cache over ``cache``'s tensors for a batch (the forward pass appends to it)."""
        from transformers import DynamicCache

        copies = [(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1))
                  for layer in cache.layers]  # fmt: skip
        return DynamicCache(ddp_cache_data=copies)

    def _packed_logits(
        self, suffixes: list[list[int]], keep: int, prefix_len: int, cache: Any
    ) -> torch.Tensor:
        """Logits ``[len(suffixes), keep, vocab]`` of each suffix's last ``keep`` positions,
        the suffixes packed into one row after the cached prefix (see the module docstring)."""
        total = sum(len(s) for s in suffixes)
        input_ids = torch.tensor([[t for s in suffixes for t in s]], dtype=torch.long)
        positions = torch.empty((1, total), dtype=torch.long)
        mask = torch.zeros((1, 1, total, prefix_len + total), dtype=torch.bool)
        mask[0, 0, :, :prefix_len] = True
        read: list[int] = []
        start = 0
        for suffix in suffixes:
            end = start + len(suffix)
            positions[0, start:end] = torch.arange(prefix_len, prefix_len + len(suffix))
            block = torch.ones((len(suffix), len(suffix)), dtype=torch.bool).tril()
            mask[0, 0, start:end, prefix_len + start : prefix_len + end] = block
            read.extend(range(end - keep, end))
            start = end
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                **{_cache_name(): self._cache_for(cache, 1)},
                use_cache=True,
                logits_to_keep=torch.tensor(read, device=self.device),
            ).logits
        return logits.float().cpu().reshape(len(suffixes), keep, -1)

    def _last_logits(
        self, rows: list[list[int]], keep: int, prefix: tuple[int, Any] | None = None
    ) -> torch.Tensor:
        """Logits (float32, CPU) of the last ``keep`` positions of left-padded rows.

        With ``prefix=(length, cache)`` the rows are suffixes of that cached prefix: the
        cache is copied to the batch, the mask covers prefix + padded suffix (padding in
        the middle is masked like any padding), and positions continue from the prefix.
        """
        width = max(len(r) for r in rows)
        pad_id = int(self.tokenizer.pad_token_id)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, width - len(r) :] = torch.tensor(r)
            attention[i, width - len(r) :] = 1
        # Left padding shifts positions; give each row positions that start at 0.
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        extra: dict[str, Any] = {}
        if prefix is not None:
            prefix_len, cache = prefix
            positions = positions + prefix_len
            attention = torch.cat([torch.ones((len(rows), prefix_len), dtype=torch.long), attention], dim=1)
            extra[_cache_name()] = self._cache_for(cache, len(rows))
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                position_ids=positions.to(self.device),
                logits_to_keep=keep,
                use_cache=prefix is not None,
                **extra,
            ).logits
        return logits.float().cpu()


# Positions whose log-softmax is taken at once by ``echo_token_logprobs``: bounds the float32
# [positions, vocab] buffer (256 x 152k x 4 B = 156 MB for a Qwen vocabulary).
_ECHO_CHUNK = 256

EchoRow = tuple[list[float | None], list[list[tuple[int, float]]]]


def echo_token_logprobs(
    model: Any,
    rows: list[list[int]],
    top_k: int,
    device: str,
    head_cache: dict[str, Any],
    prefix_store: dict[str, Any] | None = None,
    min_shared_prefix: int = 8,
) -> list[EchoRow]:
    """For every token of every row, its log-probability given the tokens before it (None for
    a row's first token, which has no context) and the ``top_k`` most likely tokens at that
    position, as ``(token id, logprob)`` pairs: what ``/v1/completions`` with ``echo`` returns.

    Every position's logits come from a forward pass with a float32 head (``float32_head``).
    The prefix the rows share (the same prompt followed by each answer option; for one row,
    all of it but the last token) runs once into a KV cache and its log-softmax is taken once,
    then each row's own suffix. With ``prefix_store`` (a dict the caller keeps between calls)
    the last call's prefix, KV cache and per-token results are kept, and a call whose prefix
    starts the same way (the k-shot exemplars of an exam subject, question after question)
    computes only what differs: the automatic prefix caching vLLM does across requests. A
    causal model's logits at a position depend only on the tokens up to it, so the reuse
    changes nothing but float rounding.
    """
    if not rows:
        return []
    if any(not row for row in rows):
        raise ValueError("every row needs at least one token")
    shared = min(len(row) for row in rows) - 1
    for row in rows[1:]:
        shared = min(shared, common_prefix_len(rows[0], row))
    with float32_head(model, head_cache), torch.inference_mode():
        prefix = None
        if shared >= min_shared_prefix:
            prefix = _prefix_pass(model, rows[0][:shared], device, top_k, prefix_store, min_shared_prefix)
        if prefix is None:
            out: list[EchoRow] = []
            for row in rows:
                logits = model(input_ids=torch.tensor([row], device=device)).logits[0]
                chosen, top = _echo_positions(logits[:-1], row[1:], top_k)
                out.append(([None, *chosen], [[], *top]))
            return out
        cache, last_logits, head_chosen, head_top = prefix
        suffixes = [row[shared:] for row in rows]
        # A suffix's last token's logits predict what follows it, which is never read: only
        # suffix[:-1] runs, and a one-token suffix (an option letter) needs no pass at all.
        inputs = [suffix[:-1] for suffix in suffixes]
        own_logits: dict[int, torch.Tensor] = {}
        for batch in _suffix_batches([i for i, ids in enumerate(inputs) if ids], inputs):
            # One pass for the batch (a pass over few tokens costs what reading the weights
            # costs), right-padded: causal attention keeps the padding unseen.
            width = max(len(inputs[i]) for i in batch)
            padded = [inputs[i] + [inputs[i][0]] * (width - len(inputs[i])) for i in batch]
            logits = model(
                input_ids=torch.tensor(padded, device=device),
                attention_mask=torch.ones((len(batch), shared + width), dtype=torch.long, device=device),
                position_ids=torch.arange(shared, shared + width, device=device)[None].expand(len(batch), -1),
                **{_cache_name(): PrefixScoring._cache_for(cache, len(batch))},
                use_cache=True,
            ).logits
            for row_in_batch, index in enumerate(batch):
                own_logits[index] = logits[row_in_batch, : len(inputs[index])].float()
        results: list[EchoRow] = []
        for index, suffix in enumerate(suffixes):
            # The prefix's last position predicts the row's first own token.
            tail = last_logits if index not in own_logits else torch.cat([last_logits, own_logits[index]])
            chosen, top = _echo_positions(tail, suffix, top_k)
            results.append(([None, *head_chosen, *chosen], [[], *head_top, *top]))
        return results


def _suffix_batches(indices: list[int], inputs: list[list[int]]) -> list[list[int]]:
    """``indices`` in order, in batches of at most ``_ECHO_CHUNK`` padded tokens of ``inputs``."""
    batches: list[list[int]] = []
    width = 0
    for index in indices:
        wider = max(width, len(inputs[index]))
        if batches and wider * (len(batches[-1]) + 1) <= _ECHO_CHUNK:
            batches[-1].append(index)
            width = wider
        else:
            batches.append([index])
            width = len(inputs[index])
    return batches


def _prefix_pass(
    model: Any, ids: list[int], device: str, top_k: int, store: dict[str, Any] | None, min_reuse: int
) -> tuple[Any, torch.Tensor, list[float | None], list[list[tuple[int, float]]]] | None:
    """The KV cache of ``ids``, the logits of its last position ``[1, vocab]`` and the echo
    results of its tokens after the first, reusing what ``store`` holds of a previous prefix
    that starts the same way; None for a cache layout we do not expand (sliding window, ...),
    when the rows run whole."""
    from transformers import DynamicCache

    reuse = 0
    if store and store.get("model") == id(model) and store.get("top_k") == top_k:
        reuse = min(common_prefix_len(store["ids"], ids), len(ids))
    if store and reuse >= min_reuse:
        # Position reuse - 1 runs again: its logits predict ids[reuse], which may differ.
        keep = reuse - 1
        kept = [(layer.keys[:, :, :keep], layer.values[:, :, :keep]) for layer in store["cache"].layers]
        output = model(
            input_ids=torch.tensor([ids[keep:]], device=device),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=device),
            position_ids=torch.arange(keep, len(ids), device=device)[None],
            **{_cache_name(): DynamicCache(ddp_cache_data=kept)},
            use_cache=True,
        )
        logits = output.logits[0]
        chosen, top = _echo_positions(logits[:-1], ids[reuse:], top_k)
        chosen, top = store["chosen"][:keep] + chosen, store["top"][:keep] + top
    else:
        output = model(input_ids=torch.tensor([ids], device=device), use_cache=True)
        logits = output.logits[0]
        chosen, top = _echo_positions(logits[:-1], ids[1:], top_k)
    cache = getattr(output, _cache_name())
    if not _plain_cache(cache):
        return None
    last = logits[-1:].float()
    if store is not None:
        store.clear()
        store.update(model=id(model), top_k=top_k, ids=list(ids), cache=cache, chosen=chosen, top=top)
    return cache, last, chosen, top


def _echo_positions(
    logits: torch.Tensor, targets: list[int], top_k: int
) -> tuple[list[float | None], list[list[tuple[int, float]]]]:
    """Logprob of ``targets[i]`` under ``logits[i]``, and the ``top_k`` best there."""
    chosen: list[float | None] = []
    top: list[list[tuple[int, float]]] = []
    wanted = torch.tensor(targets, dtype=torch.long, device=logits.device)
    for start in range(0, len(targets), _ECHO_CHUNK):
        end = min(start + _ECHO_CHUNK, len(targets))
        logprobs = torch.log_softmax(logits[start:end].float(), dim=-1)
        chosen.extend(logprobs.gather(1, wanted[start:end, None])[:, 0].cpu().tolist())
        if top_k > 0:
            values, ids = logprobs.topk(min(top_k, logprobs.shape[-1]), dim=-1)
            pairs = zip(ids.cpu().tolist(), values.cpu().tolist(), strict=True)
            top.extend(list(zip(i, v, strict=True)) for i, v in pairs)
        else:
            top.extend([] for _ in range(end - start))
    return chosen, top


def _plain_cache(cache: Any) -> bool:
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)

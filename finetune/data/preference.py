"""Preference pairs for DPO: reading, checking, hashing, rendering, and the log-prob margin.

A pair file is JSONL, one pair a line, in trl's preference format, conversational
(what ``ladder feedback promote --to pairs`` writes)::

    {"prompt": [{"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}]}

or standard, with plain strings for the three fields. Conversational pairs are rendered with
the model's chat template (``finetune.train.data.render``: the same text the ``hf_local``
backend gives the model), so DPO teaches the turn the model will actually produce.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.train.data import TrainDataError, json_object, render


@dataclass(frozen=True)
class Pair:
    where: str  # file:line
    prompt: tuple[dict[str, str], ...]
    chosen: str
    rejected: str


def _messages(value: Any, where: str, key: str) -> tuple[dict[str, str], ...]:
    if isinstance(value, str):
        return ({"role": "user" if key == "prompt" else "assistant", "content": value},)
    if not isinstance(value, list) or not value:
        raise TrainDataError(f"{where}: {key!r} must be a string or a non-empty list of messages")
    out = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise TrainDataError(f"{where}: {key}[{index}] needs a string 'content'")
        out.append({"role": str(message.get("role", "user")), "content": message["content"]})
    return tuple(out)


def parse_pair(line: str, where: str) -> Pair:
    row = json_object(line, where)
    missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
    if missing:
        raise TrainDataError(
            f"{where}: missing {', '.join(missing)}",
            hint='a pair is {"prompt": ..., "chosen": ..., "rejected": ...} (see ladder feedback promote)',
        )
    prompt = _messages(row["prompt"], where, "prompt")
    chosen, rejected = (_messages(row[key], where, key) for key in ("chosen", "rejected"))
    if len(chosen) != 1 or len(rejected) != 1 or {chosen[0]["role"], rejected[0]["role"]} != {"assistant"}:
        raise TrainDataError(f"{where}: chosen and rejected must each be one assistant message")
    if prompt[-1]["role"] != "user":
        raise TrainDataError(f"{where}: the prompt must end with the user's message")
    if not chosen[0]["content"].strip() or not rejected[0]["content"].strip():
        raise TrainDataError(f"{where}: chosen and rejected must not be empty")
    if chosen[0]["content"].strip() == rejected[0]["content"].strip():
        raise TrainDataError(f"{where}: chosen and rejected are the same: no preference to learn")
    return Pair(where, prompt, chosen[0]["content"], rejected[0]["content"])


def load_pairs(path: Path, min_pairs: int) -> tuple[list[Pair], str]:
    """The pairs of a JSONL file and the SHA-256 of its bytes (the manifest's ``pairs_hash``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("feedback_pairs.jsonl", "pairs.jsonl", "train.jsonl"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise TrainDataError(f"{path} holds no pairs file (pairs.jsonl)")
    if not path.is_file():
        raise TrainDataError(f"preference pairs not found: {path}")
    data = path.read_bytes()
    pairs = [
        parse_pair(line, f"{path}:{number}")
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1)
        if line.strip()
    ]
    if len(pairs) < min_pairs:
        raise TrainDataError(
            f"{path}: {len(pairs)} preference pair(s); at least {min_pairs} are needed",
            hint="collect more thumbs-down ratings with corrections, or lower --min-examples",
        )
    return pairs, hashlib.sha256(data).hexdigest()


def render_pair(tokenizer: Any, pair: Pair) -> dict[str, str]:
    """trl's standard format: the prompt as the model sees it, each completion as the rest."""
    prompt = render(tokenizer, list(pair.prompt), add_generation_prompt=True)
    out = {"prompt": prompt}
    for key, text in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        full = render(tokenizer, [*pair.prompt, {"role": "assistant", "content": text}], False)
        out[key] = full[len(prompt) :] if full.startswith(prompt) else text
        eos = tokenizer.eos_token
        if eos and not out[key].endswith(eos):
            out[key] += eos  # as trl adds it: the reply ends where the model stops
    return out


def preference_margins(model: Any, tokenizer: Any, rows: list[dict[str, str]]) -> list[float]:
    """log p(chosen | prompt) - log p(rejected | prompt) per pair, under ``model`` as it is."""
    import torch

    def logprob(prompt: str, completion: str) -> float:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + completion_ids], device=model.device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        targets = ids[0, 1:]
        start = len(prompt_ids) - 1
        picked = logprobs[start:].gather(1, targets[start:].unsqueeze(1))
        return float(picked.sum())

    was_training = model.training
    model.eval()
    try:
        return [logprob(r["prompt"], r["chosen"]) - logprob(r["prompt"], r["rejected"]) for r in rows]
    finally:
        model.train(was_training)

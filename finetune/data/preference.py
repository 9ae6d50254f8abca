"""Preference pairs for DPO: reading, checking and hashing a pair file.

A pair file is JSONL, one pair a line, in trl's preference format, conversational
(what ``ladder feedback promote --to pairs`` writes)::

    {"prompt": [{"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}]}

or standard, with plain strings for the three fields. Every problem is a ``TrainDataError``
naming the file and line (read by ``assistant.records_io``). The trainer renders the pairs
with the model's chat template (``finetune.train.dpo``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.records_io import iter_jsonl
from finetune.data.errors import TrainDataError


@dataclass(frozen=True)
class Pair:
    where: str  # file:line
    prompt: tuple[dict[str, str], ...]
    chosen: str
    rejected: str


def _messages(value: Any, path: Path, line: int, key: str) -> tuple[dict[str, str], ...]:
    if isinstance(value, str):
        return ({"role": "user" if key == "prompt" else "assistant", "content": value},)
    if not isinstance(value, list) or not value:
        raise TrainDataError(
            f"{key!r} must be a string or a non-empty list of messages", file=path, line=line
        )
    out = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise TrainDataError(f"{key}[{index}] needs a string 'content'", file=path, line=line)
        out.append({"role": str(message.get("role", "user")), "content": message["content"]})
    return tuple(out)


def parse_pair(row: dict[str, Any], path: Path, line: int) -> Pair:
    """One pair of a pair file, checked: one assistant message each side, and a preference."""
    missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
    if missing:
        raise TrainDataError(
            f"missing {', '.join(missing)}",
            hint='a pair is {"prompt": ..., "chosen": ..., "rejected": ...} (see ladder feedback promote)',
            file=path,
            line=line,
        )
    prompt = _messages(row["prompt"], path, line, "prompt")
    chosen, rejected = (_messages(row[key], path, line, key) for key in ("chosen", "rejected"))
    problem = None
    if len(chosen) != 1 or len(rejected) != 1 or {chosen[0]["role"], rejected[0]["role"]} != {"assistant"}:
        problem = "chosen and rejected must each be one assistant message"
    elif prompt[-1]["role"] != "user":
        problem = "the prompt must end with the user's message"
    elif not chosen[0]["content"].strip() or not rejected[0]["content"].strip():
        problem = "chosen and rejected must not be empty"
    elif chosen[0]["content"].strip() == rejected[0]["content"].strip():
        problem = "chosen and rejected are the same: no preference to learn"
    if problem is not None:
        raise TrainDataError(problem, file=path, line=line)
    return Pair(f"{path}:{line}", prompt, chosen[0]["content"], rejected[0]["content"])


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
    pairs = [parse_pair(row, path, line) for line, row in iter_jsonl(path, TrainDataError)]
    if len(pairs) < min_pairs:
        raise TrainDataError(
            f"{path}: {len(pairs)} preference pair(s); at least {min_pairs} are needed",
            hint="collect more thumbs-down ratings with corrections, or lower --min-examples",
        )
    return pairs, hashlib.sha256(path.read_bytes()).hexdigest()

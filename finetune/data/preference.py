"""Preference pairs for DPO: reading, checking and hashing a pair file.

A pair file is JSONL, one pair a line, in trl's preference format, conversational
(what ``ladder feedback promote --to pairs`` writes)::

    {"prompt": [{"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}]}

or standard, with plain strings for the three fields. Every problem is a ``TrainDataError``
naming the file and line (read by ``assistant.records_io``). The trainer renders the pairs
with the model's chat template (``finetune.train.dpo``).

``checked_pairs`` also runs the leakage check of every path into training (``assistant.leakage``)
on each pair's user turns: a pair whose prompt repeats a question of a shipped suite or of a
suite the caller names is dropped and counted; when every pair leaks, nothing is trained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.records_io import iter_jsonl
from finetune.data.errors import TrainDataError

if TYPE_CHECKING:
    from assistant.leakage import SuiteQuestionReader


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
    """The pairs of a JSONL file and the SHA-256 of its bytes (the manifest's ``pairs_hash``);
    no leakage check (``checked_pairs`` runs it)."""
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


@dataclass
class CheckedPairs:
    pairs: list[Pair]  # the pairs to train on
    pairs_hash: str  # the SHA-256 of the file
    in_file: int  # pairs in the file, leaking ones included
    leaks: list[dict[str, Any]] = field(default_factory=list)  # {source, suite, item, match, similarity}
    suites: list[str] = field(default_factory=list)  # the suites checked, by name


def checked_pairs(
    path: Path, min_pairs: int, suites: SuiteQuestionReader, extra: Sequence[Path] = ()
) -> CheckedPairs:
    """The pairs of ``path`` without those whose user turns repeat an evaluation question (every
    shipped suite and ``extra``, read by ``suites``). Refused (``TrainDataError``): a bad file,
    every pair leaking, or fewer than ``min_pairs`` left."""
    from assistant.leakage import QuestionIndex, load_eval_questions

    questions, checked = load_eval_questions(suites, extra)
    pairs, pairs_hash = load_pairs(path, 1)
    index = QuestionIndex(questions)
    kept, leaks = [], []
    for pair in pairs:
        leak = index.find([m["content"] for m in pair.prompt if m["role"] == "user"])
        if leak is None:
            kept.append(pair)
        else:
            leaks.append({"source": pair.where, **leak})
    if leaks and not kept:
        first = leaks[0]
        raise TrainDataError(
            f"all {len(pairs)} preference pair(s) repeat evaluation questions (first: {first['source']} ~ "
            f"{first['suite']} {first['item']}, {first['match']}); nothing to train on",
            hint="a model trained on them would be tested on what it was taught: collect other pairs",
        )
    if len(kept) < min_pairs:
        dropped = f" after dropping {len(leaks)} that repeat evaluation questions" if leaks else ""
        raise TrainDataError(
            f"{path}: {len(kept)} preference pair(s){dropped}; at least {min_pairs} are needed",
            hint="collect more thumbs-down ratings with corrections, or lower --min-examples",
        )
    return CheckedPairs(kept, pairs_hash, len(pairs), leaks, [s.name for s in checked])

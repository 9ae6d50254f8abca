"""Shared by the training tests (imported as a module; it holds no tests): a small, learnable
chat classification set, raw text for continued pre-training, and quick training settings."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from finetune.train.config import TrainConfig

LABELS = {"red": "alpha", "blue": "beta", "green": "gamma"}


def chat_record(rng: random.Random) -> dict[str, Any]:
    colour = rng.choice(sorted(LABELS))
    filler = " ".join(
        rng.choice(["the", "a", "to", "is", "of", "in", "and"]) for _ in range(rng.randint(2, 12))
    )
    return {
        "messages": [
            {"role": "user", "content": f"Label this: {filler} {colour}"},
            {"role": "assistant", "content": LABELS[colour]},
        ],
        "tags": ["test"],
        "source": "generated",
    }


def write_chat_data(folder: Path, n_train: int = 60, n_val: int = 12, seed: int = 0) -> Path:
    """A data folder as ``ladder finetune prepare`` writes it (train, val, manifest, report)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n_train), ("val", n_val)):
        lines = [json.dumps(chat_record(rng)) for _ in range(count)]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "manifest.json").write_text(
        json.dumps({"data_hash": f"hash-{seed}-{n_train}"}), encoding="utf-8"
    )
    (folder / "report.json").write_text(json.dumps({"examples": n_train + n_val}), encoding="utf-8")
    return folder


def write_text_data(folder: Path, n_train: int = 30, n_val: int = 6) -> Path:
    rng = random.Random(1)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n_train), ("val", n_val)):
        lines = [
            json.dumps({"text": " ".join(rng.choice(["the world", "is", "Hello", "and"]) for _ in range(20))})
            for _ in range(count)
        ]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def quick_config(**changes: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "max_steps": 30,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "min_examples": 10,
        "checkpoint_every": 0,
        "eval_every": 10,
        "rank": 8,
        "alpha": 16,
        "dropout": 0.0,
    }
    values.update(changes)
    return TrainConfig(**values)

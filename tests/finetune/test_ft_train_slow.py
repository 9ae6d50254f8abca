"""The real test pack (smollm2-135m) learns the project's support-ticket classification task:
val loss falls and held-out accuracy beats the base model's. Slow: minutes on a CPU."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant.settings import load_settings
from finetune.train.config import TrainConfig
from finetune.train.run import TrainRequest, train

ROOT = Path(__file__).resolve().parents[2]
TICKETS = ROOT / "datasets" / "sft" / "support_tickets.jsonl"

pytestmark = pytest.mark.slow


def _conversations() -> list[list[dict[str, str]]]:
    rows = [json.loads(line) for line in TICKETS.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(rows)
    return [
        [
            {"role": "user", "content": f"{r['instruction']}\n\n{r['input']}"},
            {"role": "assistant", "content": r["output"]},
        ]
        for r in rows
    ]


def _accuracy(backend: object, conversations: list[list[dict[str, str]]]) -> float:
    from assistant.types import GenParams, Message

    batch = [[Message("user", c[0]["content"])] for c in conversations]
    replies = backend.generate(batch, GenParams(max_new_tokens=8))  # type: ignore[attr-defined]
    hits = [r.text.strip().lower() == c[1]["content"] for r, c in zip(replies, conversations, strict=True)]
    return sum(hits) / len(hits)


@pytest.mark.skipif(not TICKETS.is_file(), reason="datasets/sft/build.py has not been run")
def test_lora_on_smollm2_lowers_val_loss_and_beats_the_base_on_held_out_tickets(
    real_pack_dir: Path, tmp_path: Path, isolated_home: Path
) -> None:
    from assistant.backends.load import load_backend

    conversations = _conversations()
    test, val, train_rows = conversations[:32], conversations[32:56], conversations[56:248]
    data = tmp_path / "tickets"
    data.mkdir()
    for name, rows in (("train", train_rows), ("val", val)):
        (data / f"{name}.jsonl").write_text(
            "".join(json.dumps({"messages": r}) + "\n" for r in rows), "utf-8"
        )
    settings = load_settings({"threads": 2, "dtype": "float32", "batch_size": 16})
    config = TrainConfig(max_steps=24, batch_size=8, learning_rate=1e-3, eval_every=12, checkpoint_every=0)
    result = train(TrainRequest(str(real_pack_dir), data, "tickets", config), settings)
    res = result.manifest["results"]
    assert res["val_loss"] < 0.5 * res["first_val_loss"], res

    base = _accuracy(load_backend(str(real_pack_dir), settings), test)
    tuned = _accuracy(load_backend(f"{real_pack_dir}+tickets", settings), test)
    assert tuned > base and tuned >= 0.6, (base, tuned)

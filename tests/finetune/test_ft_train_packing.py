"""Packed micro-batches: rows without padding and a shared prefix computed once give the same
loss and the same gradients as the examples one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from finetune.train_batches import IGNORE, collate, loss_sum
from finetune.train_config import TrainConfig
from finetune.train_data import Encoded, encode_chat
from finetune.train_packing import MIN_SHARED_PREFIX, pack_rows, shared_prefix

SYSTEM = {
    "role": "system",
    "content": "You label short texts. Reply with the label only, nothing else at all.",
}


@pytest.fixture(scope="module")
def lora(tiny_model_dir: Path) -> tuple[Any, Any]:
    from finetune.train_loop import build_lora_model

    torch.set_num_threads(1)  # as training does with threads=1; a tiny model gains nothing from more
    model, tokenizer = build_lora_model(tiny_model_dir, TrainConfig(rank=4, alpha=8, dropout=0.0), "cpu",
                                        torch.float32)  # fmt: skip
    with torch.no_grad():  # LoRA B starts at zero: give it values so its gradients are not trivial
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return model, tokenizer


def _examples(tokenizer: Any, system: bool) -> list[Encoded]:
    turns = [
        ("Hello", "the world"),
        ("a b c d e f g h i j k l m n o p q r s t u v w x y z and the", "is"),
        ("and", "is"),
        ("the a", "Hello world"),
    ]
    out = []
    for user, reply in turns:
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        encoded = encode_chat(tokenizer, [SYSTEM, *messages] if system else messages, 1000)
        assert encoded is not None
        out.append(encoded)
    return out


def _loss_and_grads(model: Any, batches: list[Any]) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    total = sum(loss_sum(model, b) for b in batches)
    total.backward()  # type: ignore[union-attr]
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return float(total.detach()), grads  # type: ignore[union-attr]


def test_first_fit_decreasing_rows() -> None:
    lengths = [10, 3, 7, 4, 6, 2]
    rows = pack_rows(lengths)
    assert sorted(i for row in rows for i in row) == list(range(6))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) == 4 and rows[0] == [0]  # 10 | 7+3 | 6+4 | 2
    assert len(pack_rows(lengths, capacity=16)) == 2


@pytest.mark.parametrize("system", [False, True], ids=["no-shared-prefix", "shared-system-prompt"])
def test_packed_rows_give_the_losses_and_gradients_of_separate_examples(
    lora: tuple[Any, Any], system: bool
) -> None:
    model, tokenizer = lora
    examples = _examples(tokenizer, system)
    pad = int(tokenizer.pad_token_id)
    packed = collate(examples, "packed", pad)
    loss, grads = _loss_and_grads(model, [packed])
    alone_loss, alone_grads = _loss_and_grads(model, [collate([e], "padded", pad) for e in examples])
    padded_loss, _ = _loss_and_grads(model, [collate(examples, "padded", pad)])
    assert loss == pytest.approx(alone_loss, rel=1e-5) and padded_loss == pytest.approx(alone_loss, rel=1e-5)
    assert grads.keys() == alone_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads[name], alone_grads[name], rtol=1e-4, atol=1e-6)
    assert packed.n_tokens == sum(len(e) for e in examples)
    assert packed.n_targets == sum(e.n_targets for e in examples) == int((packed.targets != IGNORE).sum())
    computed = packed.inputs["input_ids"].numel()
    prefix = shared_prefix(examples)
    if system:
        assert prefix >= MIN_SHARED_PREFIX
        assert packed.inputs["input_ids"].shape[0] == 1, "one row: the prefix once, then each example"
        assert computed == prefix + sum(len(e) - prefix for e in examples)
    else:
        assert prefix == 0
        assert computed < collate(examples, "padded", pad).inputs["input_ids"].numel()


def test_the_mask_lets_each_example_see_the_prefix_and_itself_only(lora: tuple[Any, Any]) -> None:
    _, tokenizer = lora
    examples = _examples(tokenizer, system=True)
    examples = [examples[0], examples[2]]  # the longer first: first-fit decreasing keeps it first
    assert len(examples[0]) >= len(examples[1])  # (a stable sort keeps equal lengths in order)
    batch = collate(examples, "packed", int(tokenizer.pad_token_id))
    prefix = shared_prefix(examples)
    first, second = len(examples[0]) - prefix, len(examples[1]) - prefix
    mask = batch.inputs["attention_mask"][0, 0]
    positions = batch.inputs["position_ids"][0].tolist()
    a, b = prefix, prefix + first  # where each example's own tokens start in the row
    assert positions[a] == prefix and positions[b] == prefix, "positions continue from the prefix"
    assert mask[b, :prefix].all() and mask[a : a + first, :prefix].all()
    assert not mask[b : b + second, a : a + first].any(), "the second example never sees the first"
    assert not mask[a : a + first, b : b + second].any()
    assert torch.equal(
        mask[b : b + second, b : b + second], torch.ones(second, second, dtype=torch.bool).tril()
    )
    assert not mask[:prefix, prefix:].any(), "the prefix sees no example"


def test_a_prefix_that_is_learnt_from_is_not_shared(lora: tuple[Any, Any]) -> None:
    _, tokenizer = lora
    examples = _examples(tokenizer, system=True)
    prefix = shared_prefix(examples)
    first = examples[0]

    def learning_at(position: int) -> Encoded:  # the first example, with a token learnt there
        targets = list(first.targets)
        targets[position] = first.input_ids[position + 1]
        return Encoded(first.input_ids, tuple(targets))

    assert prefix > 30
    assert shared_prefix([learning_at(30), *examples[1:]]) == 30, "the prefix ends before a learnt token"
    assert shared_prefix([learning_at(10), *examples[1:]]) == 0, "too short to be worth sharing"
    assert shared_prefix(examples[:1]) == 0

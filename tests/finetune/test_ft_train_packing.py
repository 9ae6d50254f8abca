"""Packed micro-batches: rows without padding, with the context that examples have in common
(a prefix tree of their leading tokens) computed once, give the same loss and the same
gradients as the examples one by one (to within float32 rounding over the batch's tokens,
``tests.helpers.numerics``). Marked ``numerics``: rerun under every ATEN_CPU_CAPABILITY."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from finetune.train import packing as train_packing
from finetune.train.batches import IGNORE, collate, loss_sum
from finetune.train.config import TrainConfig
from finetune.train.data import Encoded, encode_chat
from finetune.train.packing import pack_rows, shareable, trie_paths
from tests.helpers.numerics import assert_close_for

pytestmark = pytest.mark.numerics

SYSTEM = {
    "role": "system",
    "content": "You label short texts. Reply with the label only, nothing else at all.",
}


@pytest.fixture(scope="module")
def lora(tiny_model_dir: Path) -> tuple[Any, Any]:
    from finetune.train.methods import build_model

    torch.set_num_threads(1)  # as training does with threads=1; a tiny model gains nothing from more
    model, tokenizer = build_model(tiny_model_dir, TrainConfig(rank=4, alpha=8, dropout=0.0), "cpu",
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


# ---- token-level examples: context (nothing learnt) then a reply -----------------------------
_rng = random.Random(7)


def _tokens(n: int) -> list[int]:
    return [_rng.randrange(32, 250) for _ in range(n)]


def _example(context: list[int], reply: list[int]) -> Encoded:
    """``context`` is learnt from nowhere; its last token predicts the reply's first."""
    ids = context + reply
    targets = [IGNORE] * (len(context) - 1) + reply + [IGNORE]
    return Encoded(tuple(ids), tuple(targets))


SYS, TASK_A, TASK_B, HEAD = _tokens(12), _tokens(30), _tokens(24), _tokens(3)


def _task(instruction: list[int], n: int) -> list[Encoded]:
    return [_example(SYS + instruction + _tokens(2 + i) + HEAD, _tokens(2 + i % 3)) for i in range(n)]


def _mixed() -> list[Encoded]:
    """Two tasks with long instructions of their own, and general questions: all share the system prompt."""
    general = [_example(SYS + _tokens(5 + i) + HEAD, _tokens(6)) for i in range(3)]
    return [*_task(TASK_A, 3), general[0], *_task(TASK_B, 2), *general[1:]]


def _nested() -> list[Encoded]:
    """One example's context is the start of another's, and a third's the start of both."""
    return [
        _example(SYS + TASK_A + HEAD, _tokens(3)),
        _example(SYS + TASK_A + HEAD + TASK_B, _tokens(4)),
        _example(SYS, _tokens(5)),
        _example(SYS + TASK_A[:10], _tokens(2)),
    ]


def _duplicates() -> list[Encoded]:
    """The same example twice, and one whose tokens are another's context and a single token
    (with nothing learnt before it: it keeps that one token of its own)."""
    first = _example(SYS + TASK_B + HEAD, _tokens(4))
    context = shareable(first)
    ids = first.input_ids[: context + 1]
    prefix_only = Encoded(ids, (IGNORE,) * context + (first.input_ids[context + 1],))
    return [first, _example(SYS + TASK_A, _tokens(3)), first, prefix_only]


def _raw_text() -> list[Encoded]:
    """Learnt from the first token on: nothing to share."""
    out = []
    for n in (24, 4, 8, 2):  # 36 | 20 + 16 | 14: rows of whole examples
        ids = SYS + _tokens(n)
        out.append(Encoded(tuple(ids), (*ids[1:], IGNORE)))
    return out


CASES = {
    "mixed-tasks": _mixed,
    "nested": _nested,
    "duplicates": _duplicates,
    "singleton": lambda: _mixed()[:1],
    "raw-text": _raw_text,
}


def _loss_and_grads(model: Any, batches: list[Any]) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    total = sum(loss_sum(model, b) for b in batches)
    total.backward()  # type: ignore[union-attr]
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return float(total.detach()), grads  # type: ignore[union-attr]


def _assert_as_separate(model: Any, examples: list[Encoded], pad: int) -> Any:
    """The packed batch's loss and LoRA gradients are those of the examples one by one."""
    packed = collate(examples, "packed", pad)
    loss, grads = _loss_and_grads(model, [packed])
    alone_loss, alone_grads = _loss_and_grads(model, [collate([e], "padded", pad) for e in examples])
    assert loss == pytest.approx(alone_loss, rel=1e-5)
    assert grads.keys() == alone_grads.keys() and grads
    for name in grads:
        # Each LoRA gradient is a sum over the batch's tokens, added up in another order.
        assert_close_for(grads[name], alone_grads[name], torch.float32, packed.n_tokens, name)
    assert packed.n_tokens == sum(len(e) for e in examples)
    assert packed.n_targets == sum(e.n_targets for e in examples) == int((packed.targets != IGNORE).sum())
    return packed


def _computed_once(examples: list[Encoded]) -> int:
    """Tokens of one row: each distinct shareable prefix once, then every example's own tokens."""
    paths = trie_paths(examples)
    own = sum(len(e) - len(p) for e, p in zip(examples, paths, strict=True))
    return len({n for p in paths for n in p}) + own


def test_first_fit_decreasing_rows() -> None:
    lengths = [10, 3, 7, 4, 6, 2]
    rows = pack_rows(lengths)
    assert sorted(i for row in rows for i in row) == list(range(6))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) == 4 and rows[0] == [0]  # 10 | 7+3 | 6+4 | 2
    assert len(pack_rows(lengths, capacity=16)) == 2


def test_rows_gather_the_examples_that_share_trie_nodes() -> None:
    # a, b share nodes 0-4; c, d share 10-14; each example is 5 shared tokens and 3 of its own
    paths = [[0, 1, 2, 3, 4], [10, 11, 12, 13, 14], [0, 1, 2, 3, 4], [10, 11, 12, 13, 14]]
    rows = pack_rows([8, 8, 8, 8], capacity=11, paths=paths)
    assert sorted(sorted(row) for row in rows) == [[0, 2], [1, 3]]  # first fit would pair 0 with 1
    assert len(pack_rows([8, 8, 8, 8], capacity=26, paths=paths)) == 1  # 5 + 5 + 4 * 3 + 2 * 0


@pytest.mark.parametrize("system", [False, True], ids=["chat-no-system", "chat-system-prompt"])
def test_packed_chat_rows_give_the_losses_and_gradients_of_separate_examples(
    lora: tuple[Any, Any], system: bool
) -> None:
    model, tokenizer = lora
    examples = _examples(tokenizer, system)
    pad = int(tokenizer.pad_token_id)
    packed = _assert_as_separate(model, examples, pad)
    padded_loss, _ = _loss_and_grads(model, [collate(examples, "padded", pad)])
    assert padded_loss == pytest.approx(_loss_and_grads(model, [packed])[0], rel=1e-5)
    assert packed.inputs["input_ids"].numel() < collate(examples, "padded", pad).inputs["input_ids"].numel()
    if system:
        assert packed.inputs["input_ids"].shape[0] == 1, "one row: the shared context once, then each example"
        assert packed.inputs["input_ids"].numel() == _computed_once(examples)


@pytest.mark.parametrize("case", list(CASES))
def test_trie_rows_give_the_losses_and_gradients_of_separate_examples(lora: Any, case: str) -> None:
    model, tokenizer = lora
    examples = CASES[case]()
    packed = _assert_as_separate(model, examples, int(tokenizer.pad_token_id))
    if case == "raw-text":
        assert packed.inputs["input_ids"].shape[0] == 3
    else:
        assert packed.inputs["input_ids"].shape[0] == 1
        assert packed.inputs["input_ids"].numel() == _computed_once(examples)
        assert _computed_once(examples) < sum(len(e) for e in examples) or case == "singleton"


def test_mixed_tasks_share_each_group_s_context_once() -> None:
    examples = _mixed()
    paths = trie_paths(examples)
    prefixes = {e.input_ids[:k] for e in examples for k in range(1, shareable(e) + 1)}
    assert len({n for p in paths for n in p}) == len(prefixes), "a node per distinct prefix"
    assert shareable(examples[0]) == len(SYS + TASK_A + HEAD) + 1, "the last context token is learnt from"
    one_prefix = len(SYS) + sum(len(e) - len(SYS) for e in examples)  # the system prompt shared by all
    assert _computed_once(examples) <= one_prefix - 2 * len(TASK_A) - len(TASK_B), "instructions once"


def test_rows_split_when_the_trie_does_not_fit(lora: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = lora
    monkeypatch.setattr(train_packing, "SHARED_ROW_BUDGET", 40)
    examples = _mixed()
    packed = _assert_as_separate(model, examples, int(tokenizer.pad_token_id))
    rows, width = packed.inputs["input_ids"].shape
    assert rows > 1 and width <= max(len(e) for e in examples) + 40


@pytest.mark.parametrize("case", list(CASES))
def test_each_token_sees_its_own_tokens_and_nothing_else(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_packing, "SHARED_ROW_BUDGET", 60)  # some cases in several rows
    examples = CASES[case]()
    batch = collate(examples, "packed", 0)
    mask = batch.inputs["attention_mask"][:, 0]
    ids, positions = batch.inputs["input_ids"], batch.inputs["position_ids"]
    seen: dict[tuple[int, ...], int] = {}
    for r in range(ids.shape[0]):
        for q in range(ids.shape[1]):
            keys = mask[r, q].nonzero().squeeze(1)
            order = positions[r, keys].argsort()
            assert positions[r, keys][order].tolist() == list(range(int(positions[r, q]) + 1)), (
                "one token per position before this one: no other branch, no other example"
            )
            assert keys[order][-1] == q
            visible = tuple(ids[r, keys[order]].tolist())
            seen[visible] = seen.get(visible, 0) + 1
            target = int(batch.targets[r, q])
            if target != IGNORE:
                assert any(e.input_ids[: len(visible)] == visible and e.targets[len(visible) - 1] == target
                           for e in examples)  # fmt: skip
    for example in examples:  # every example ends somewhere, seeing all of itself
        assert seen.get(example.input_ids, 0) >= 1
    assert seen.get(examples[0].input_ids) == examples.count(examples[0])


def test_the_shareable_region_ends_before_the_first_learnt_token(lora: tuple[Any, Any]) -> None:
    _, tokenizer = lora
    examples = _examples(tokenizer, system=True)
    first = examples[0]
    context = shareable(first)

    def learning_at(position: int) -> Encoded:  # the first example, with a token learnt there
        targets = list(first.targets)
        targets[position] = first.input_ids[position + 1]
        return Encoded(first.input_ids, tuple(targets))

    assert context > 30 and first.targets[context] != IGNORE
    assert shareable(learning_at(30)) == 30
    assert shareable(learning_at(0)) == 0
    nothing_learnt_but_the_last = Encoded(first.input_ids[:5], (IGNORE,) * 4 + (first.input_ids[0],))
    assert shareable(nothing_learnt_but_the_last) == 4, "one token of its own"
    paths = trie_paths([first, learning_at(30), examples[1]])
    assert paths[1] == paths[0][:30], "the same tokens, the same nodes"


def test_eager_attention_reads_the_trie_mask_too(lora: tuple[Any, Any]) -> None:
    model, tokenizer = lora
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")  # adds the mask to the scores: loss_sum makes it additive
    try:
        assert model.config._attn_implementation == "eager"
        _assert_as_separate(model, _mixed(), int(tokenizer.pad_token_id))
    finally:
        model.set_attn_implementation(before)

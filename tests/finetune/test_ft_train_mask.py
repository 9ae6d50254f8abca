"""The loss mask (assistant tokens only), data checks with file:line, and the epoch order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finetune.train.batches import IGNORE, epoch_batches
from finetune.train.data import (
    TrainDataError,
    chat_tokens,
    encode_chat,
    encode_records,
    encode_text,
    load_data,
    read_records,
)
from tests.helpers.tiny_gguf import IM_END, IM_START

SMOLLM_TEMPLATE = (  # SmolLM2's template: a default system prompt when the conversation has none
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are helpful.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.chat_template, "the tiny model carries a ChatML template"
    return tok


def _learnt(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    """The text of each run of learnt tokens."""
    runs, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "the world"},
    {"role": "user", "content": "and"},
    {"role": "assistant", "content": "is"},
]


def test_only_assistant_replies_and_their_end_of_turn_are_learnt(tokenizer: Any) -> None:
    ids, labels = chat_tokens(tokenizer, CONVERSATION)
    # The tokens are the template's rendering of the whole conversation ...
    assert tokenizer.decode(ids) == tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    # ... and exactly the two replies with their <|im_end|> carry labels.
    assert _learnt(tokenizer, ids, labels) == [f"the world{IM_END}", f"is{IM_END}"]
    im_start = tokenizer.convert_tokens_to_ids(IM_START)
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    learnt_positions = [i for i, label in enumerate(labels) if label != IGNORE]
    # role markers, role names, the prompt and the newline after <|im_end|> are all -100
    assert all(labels[i] == IGNORE for i, token in enumerate(ids) if token == im_start)
    assert ids[learnt_positions[-1] + 1 :] == newline and labels[-1] == IGNORE
    reply_tokens = tokenizer("the world", add_special_tokens=False)["input_ids"]
    first = learnt_positions[0]
    assert ids[first : first + len(reply_tokens)] == reply_tokens
    assert tokenizer.decode(ids[:first]).endswith(f"{IM_START}assistant\n")
    assert sum(label != IGNORE for label in labels) == len(reply_tokens) + 1 + 1 + len(
        tokenizer("is", add_special_tokens=False)["input_ids"]
    )


def test_targets_are_the_labels_shifted_so_packed_examples_stay_apart(tokenizer: Any) -> None:
    encoded = encode_chat(tokenizer, CONVERSATION, max_len=1000)
    assert encoded is not None
    ids, labels = chat_tokens(tokenizer, CONVERSATION)
    assert list(encoded.input_ids) == ids
    assert list(encoded.targets) == [*labels[1:], IGNORE]  # position t predicts token t+1
    assert encoded.targets[-1] == IGNORE  # never the next example's first token
    assert encoded.labels == labels


def test_a_template_with_a_default_system_prompt_is_masked_too(tokenizer: Any) -> None:
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = SMOLLM_TEMPLATE
    messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "the world"}]
    ids, labels = chat_tokens(tokenizer, messages)
    assert "You are helpful." in tokenizer.decode(ids)
    assert _learnt(tokenizer, ids, labels) == [f"the world{IM_END}"]


def test_without_a_chat_template_the_plain_transcript_is_used_and_eos_is_learnt(tokenizer: Any) -> None:
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = None
    messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "the world"}]
    ids, labels = chat_tokens(tokenizer, messages)
    assert tokenizer.decode(ids).startswith("User: Hello\nAssistant: the world")
    assert _learnt(tokenizer, ids, labels) == [f" the world{tokenizer.eos_token}"]


def test_a_template_that_rewrites_earlier_turns_is_refused(tokenizer: Any) -> None:
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    # drops every assistant turn but the last one from the history, as reasoning templates do
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    with pytest.raises(TrainDataError, match="renders a conversation differently"):
        chat_tokens(tokenizer, CONVERSATION)


def test_truncation_keeps_the_start_and_drops_examples_with_nothing_left(
    tokenizer: Any, tmp_path: Path
) -> None:
    long_prompt = {"role": "user", "content": "the " * 300}
    records_file = tmp_path / "train.jsonl"
    rows = [
        {"messages": [long_prompt, {"role": "assistant", "content": "is"}]},
        {
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "the world " * 40},
            ]
        },
    ]
    records_file.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    encoded = encode_records(tokenizer, read_records(records_file), max_len=32)
    assert encoded.dropped == 1 and encoded.truncated == 2
    assert len(encoded.examples) == 1 and len(encoded.examples[0]) == 32


def test_text_is_learnt_everywhere_and_split_into_blocks(tokenizer: Any) -> None:
    pieces = encode_text(tokenizer, "Hello the world " * 30, max_len=16)
    assert len(pieces) > 2 and all(len(p) <= 16 for p in pieces)
    assert all(p.targets[:-1] == p.input_ids[1:] for p in pieces)
    assert pieces[-1].input_ids[-1] == tokenizer.eos_token_id


# ---- bad data: file and line -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "train.jsonl:2: not valid JSON"),
        ("[1, 2]", "train.jsonl:2: expected a JSON object"),
        ('{"prompt": "x"}', 'train.jsonl:2: a record needs "messages"'),
        ('{"messages": []}', "train.jsonl:2: messages must be a non-empty list"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "train.jsonl:2: messages[0] has role 'bot'"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "train.jsonl:2: no assistant message"),
        ('{"text": ""}', "train.jsonl:2: text must be a non-empty string"),
    ],
)
def test_a_malformed_line_is_reported_with_its_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    (tmp_path / "train.jsonl").write_text(f"{good}\n{line}\n", encoding="utf-8")
    with pytest.raises(TrainDataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_data(tmp_path, "sft", min_examples=1)


def test_mode_and_data_must_agree_and_the_minimum_is_enforced(tmp_path: Path) -> None:
    chat = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    (tmp_path / "train.jsonl").write_text(f"{chat}\n" * 5, encoding="utf-8")
    with pytest.raises(TrainDataError, match=r"train.jsonl:1: a chat record, but --mode cpt"):
        load_data(tmp_path, "cpt", min_examples=1)
    with pytest.raises(TrainDataError, match="has 5 training examples; at least 50"):
        load_data(tmp_path, "sft", min_examples=50)
    assert len(load_data(tmp_path, "sft", min_examples=5).train) == 5
    text_file = tmp_path / "text.jsonl"
    text_file.write_text('{"text": "hello"}\n', encoding="utf-8")
    with pytest.raises(TrainDataError, match=r"text.jsonl:1: a raw-text record, but --mode sft"):
        load_data(text_file, "sft", min_examples=1)
    with pytest.raises(TrainDataError, match="training data not found"):
        load_data(tmp_path / "missing", "sft", min_examples=1)
    with pytest.raises(TrainDataError, match=r"has no train\.jsonl"):
        load_data(_empty(tmp_path), "sft", min_examples=1)


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


# ---- batching ------------------------------------------------------------------------------------
def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    lengths = list(range(5, 45))
    first = epoch_batches(lengths, 4, "packed", seed=3, epoch=0)
    assert first == epoch_batches(lengths, 4, "packed", seed=3, epoch=0)
    assert first != epoch_batches(lengths, 4, "packed", seed=3, epoch=1)
    assert sorted(i for b in first for i in b) == list(range(40))
    grouped = epoch_batches(lengths, 4, "grouped", seed=3, epoch=0)
    assert sorted(i for b in grouped for i in b) == list(range(40))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in grouped)
    assert spread < sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first)

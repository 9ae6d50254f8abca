"""Loading fine-tuning data: every format, format detection, and every bad input named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import ConfigError, LadderError
from evaluation.suites.source import SuiteFiles
from finetune.data.load import DataError, chunk_texts, detect_format, load_file


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---- formats ----------------------------------------------------------------------------------
def test_alpaca_with_and_without_input(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "instruction": "Translate to French.",
                "input": "Good morning",
                "output": "Bonjour",
                "tags": ["mt"],
            },
            {"instruction": "什么是LoRA？", "output": "一种低秩适配方法。", "system": "你是助手。"},
        ],
    )
    first, second = load_file(path)
    assert first.messages == [
        {"role": "user", "content": "Translate to French.\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"},
    ]
    assert first.tags == ["mt"] and first.source == f"{path}:1"
    assert first.extra_probes == ["Good morning"]  # the input is checked for leakage on its own too
    assert second.messages[0] == {"role": "system", "content": "你是助手。"}
    assert second.prompt == "什么是LoRA？" and second.response == "一种低秩适配方法。"
    assert second.source == f"{path}:2"


def test_chat_messages_and_sharegpt_conversations(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."},
                ]
            },
            {
                "conversations": [
                    {"from": "human", "value": "2+2?"},
                    {"from": "gpt", "value": "4"},
                    {"from": "human", "value": "and 3+3?"},
                    {"from": "gpt", "value": "6"},
                ]
            },
        ],
    )
    assert detect_format(path) == "chat"
    chat, sharegpt = load_file(path)
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant"]
    assert [m["role"] for m in sharegpt.messages] == ["user", "assistant", "user", "assistant"]
    assert sharegpt.response == "6"
    assert sharegpt.probes() == ["2+2?", "and 3+3?"]  # every user turn is checked for leakage


def test_qa_jsonl_and_suite_yaml(tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "q1", "user_input": "Capital of France?", "reference": "Paris", "tags": ["geo"]},
            {"id": "q2", "user_input": "年假几天？", "reference": "十天"},
        ],
    )
    (tmp_path / "s.yaml").write_text("name: s\nkind: qa\ndata: qa.jsonl\n", encoding="utf-8")
    assert detect_format(data) == "qa"
    from_jsonl = load_file(data, suites=SuiteFiles())
    from_suite = load_file(tmp_path / "s.yaml", suites=SuiteFiles())
    for examples in (from_jsonl, from_suite):
        assert [e.prompt for e in examples] == ["Capital of France?", "年假几天？"]
        assert [e.response for e in examples] == ["Paris", "十天"]
        assert examples[0].tags == ["geo"]
        assert examples[1].source.endswith("qa.jsonl:2")


def test_text_files_are_chunked_with_their_line(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} talks about topic number {i} in some detail. " * 6 for i in range(6)]
    path = tmp_path / "notes.md"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    assert detect_format(path) == "text"
    (whole,) = load_file(path)
    assert whole.is_text and whole.source == f"{path}:1"
    chunks = chunk_texts([whole], size_chars=400)
    assert len(chunks) >= 6
    assert all(len(c.text) <= 400 for c in chunks)
    assert chunks[1].source == f"{path}:3"  # the second paragraph starts on line 3
    assert "".join("".join(c.text for c in chunks).split()) == "".join("".join(paragraphs).split())


def test_gbk_text_file_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "zh.txt"
    path.write_bytes("员工每年享有十天带薪年假，未休完的年假最多可结转五天。".encode("gbk"))
    (example,) = load_file(path)
    assert example.text.startswith("员工每年享有十天带薪年假")


def test_json_array_records_know_their_line(tmp_path: Path) -> None:
    path = tmp_path / "alpaca.json"
    path.write_text(
        '[\n  {"instruction": "A?", "output": "a"},\n  {"instruction": "B?",\n   "output": "b"}\n]\n', "utf-8"
    )
    examples = load_file(path)
    assert [e.source for e in examples] == [f"{path}:2", f"{path}:3"]


# ---- bad input --------------------------------------------------------------------------------
def test_malformed_jsonl_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    bad_line = '{"instruction": "B", "output": b}'
    path.write_text('{"instruction": "A", "output": "a"}\n\n' + bad_line + "\n", "utf-8")
    with pytest.raises(DataError) as info:
        load_file(path, "alpaca")
    assert str(info.value).startswith(f"{path}:3:")
    assert info.value.line == 3 and info.value.column == bad_line.index("b}") + 1
    assert "invalid JSON" in info.value.message


@pytest.mark.parametrize(
    ("fmt", "row", "field", "words"),
    [
        ("alpaca", {"instruction": "A"}, "output", "missing"),
        ("alpaca", {"output": "a"}, "instruction", "missing"),
        ("alpaca", {"instruction": "A", "output": ["a"]}, "output", "expected a string"),
        ("chat", {"messages": []}, "messages", "non-empty list"),
        ("chat", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0]", "unknown or missing role"),
        ("chat", {"messages": [{"role": "user", "content": "x"}]}, "messages", "assistant's reply"),
        (
            "chat",
            {"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]},
            "messages[0]",
            "missing content",
        ),
        (
            "chat",
            {"conversations": [{"from": "alien", "value": "x"}]},
            "conversations[0]",
            "unknown or missing",
        ),
        ("chat", {"text": "no turns"}, "messages", "missing"),
        ("alpaca", {"instruction": "A", "output": "a", "tags": "x"}, None, None),  # a single tag is fine
        ("alpaca", {"instruction": "A", "output": "a", "tags": [1]}, "tags", "list of strings"),
    ],
)
def test_missing_or_bad_fields_name_file_line_and_field(
    tmp_path: Path, fmt: str, row: dict[str, object], field: str | None, words: str | None
) -> None:
    good = (
        {"instruction": "ok", "output": "ok"}
        if fmt == "alpaca"
        else {"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}]}
    )
    path = write_jsonl(tmp_path / "d.jsonl", [good, row])
    if field is None:
        assert load_file(path, fmt)[-1].tags == ["x"]
        return
    with pytest.raises(DataError) as info:
        load_file(path, fmt)
    assert str(info.value).startswith(f"{path}:2: field {field!r}")
    assert words in info.value.message


def test_qa_without_reference_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "qa.jsonl", [{"user_input": "Q1?", "reference": "A"}, {"user_input": "Q2?"}]
    )
    with pytest.raises(DataError) as info:
        load_file(path, "qa", SuiteFiles())
    assert f"{path}:2" in str(info.value) and "'reference'" in str(info.value)


def test_unknown_format_and_undetectable_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "a", "completion": "b"}])
    with pytest.raises(ConfigError, match="unknown format 'csvish'"):
        load_file(path, "csvish")
    with pytest.raises(DataError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}:1: cannot tell the format")
    assert "--format" in (info.value.hint or "")


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_file(tmp_path / "nope.jsonl", "alpaca")
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(b'{"instruction": "ok", "output": "ok"}\n{"instruction": "caf\xe9", "output": "x"}\n')
    with pytest.raises(DataError) as info:
        load_file(bad, "alpaca")
    assert info.value.line == 2 and "UTF-8" in info.value.message
    assert isinstance(info.value, LadderError) and info.value.exit_code == 2

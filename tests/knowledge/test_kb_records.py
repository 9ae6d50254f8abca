"""Record files (JSONL, CSV): every record is chunked on its own, never merged with the next.

A JSONL file of passages must give the same chunks as the same passages saved as separate
.txt files, chunk for chunk, and every chunk must know the record it came from.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from assistant.knowledge import KnowledgeBase
from assistant.knowledge.ingest import chunk_file
from assistant.knowledge.loaders import load_bytes

SIZE, OVERLAP = 200, 40

# Short passages (well under SIZE), so a chunker that joins records would pack several into one chunk.
PASSAGES = [
    "年假为每年十五天，入职满一年后开始计算。未休完的年假可以顺延到下一年的第一季度。",
    "病假需要提供医院证明，每年带薪病假十天。超过十天的部分按基本工资的百分之六十发放。",
    "The cafeteria serves vegetarian dumplings every Friday. Lunch is free for interns.",
    "报销差旅费需要发票原件和审批单，在出差结束后三十天内提交给财务部。",
    "The VPN must be used on public networks. Passwords expire every ninety days.",
    "新员工在第一周参加入职培训，包括信息安全、考勤制度和报销流程三部分。",
    "会议室通过内部系统预订，每次最多四小时。取消预订请提前一小时操作。",
    "Parking permits are issued by the front desk; bring your badge and licence plate.",
]
# One record longer than a chunk: it is split within itself, as the same text in a .txt file is.
LONG = "".join(f"第{i}条：公司的信息安全制度要求所有员工定期修改密码并锁定屏幕。" for i in range(1, 13))


def _jsonl(records: list[object]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()


def _txt_chunks(texts: list[str]) -> list[str]:
    out: list[str] = []
    for text in texts:
        chunks, _ = chunk_file(text.encode(), ".txt", SIZE, OVERLAP)
        out.extend(c.text for c in chunks)
    return out


def _owner(chunk: str, texts: list[str]) -> list[int]:
    """The records whose text contains the whole chunk."""
    return [i for i, text in enumerate(texts) if chunk in text]


def test_jsonl_records_are_never_merged_and_match_txt_files_chunk_for_chunk() -> None:
    texts = [*PASSAGES, LONG]
    chunks, pages = chunk_file(_jsonl([{"text": t} for t in texts]), ".jsonl", SIZE, OVERLAP)
    assert pages is None
    for chunk in chunks:
        assert len(_owner(chunk.text, texts)) == 1, f"chunk spans records: {chunk.text!r}"
    assert [c.text for c in chunks] == _txt_chunks(texts)
    assert [c.number for c in chunks] == list(range(len(chunks)))
    # The long record is split within itself, into more than one chunk, all of them its own.
    assert sum(1 for c in chunks if c.text in LONG) > 1


def test_each_chunk_names_its_record_by_id_or_line() -> None:
    records: list[object] = [
        {"id": "faq-7", "text": PASSAGES[0]},
        {"text": PASSAGES[1]},  # no id: the line number names it
        {"doc_id": 42, "text": LONG},
    ]
    data = _jsonl(records[:1]) + b"\n\n" + _jsonl(records[1:])  # a blank line 2 still counts as a line
    chunks, _ = chunk_file(data, ".jsonl", SIZE, OVERLAP)
    by_record: dict[str | None, list[str]] = {}
    for chunk in chunks:
        by_record.setdefault(chunk.record, []).append(chunk.text)
    assert set(by_record) == {"faq-7", "line 3", "42"}
    assert by_record["faq-7"] == [PASSAGES[0]]
    assert by_record["line 3"] == [PASSAGES[1]]
    assert len(by_record["42"]) > 1 and all(text in LONG for text in by_record["42"])


def test_jsonl_sections_are_one_per_record() -> None:
    sections = load_bytes(_jsonl([{"title": "Leave", "text": "Fifteen days."}, "plain", {"q": 1}]), ".jsonl")
    assert [(s.text, s.record) for s in sections] == [
        ("Leave\nFifteen days.", "line 1"),
        ("plain", "line 2"),
        ("q: 1", "line 3"),
    ]


def test_csv_rows_are_never_merged() -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "passage"])
    for i, passage in enumerate(PASSAGES, start=1):
        writer.writerow([f"p{i}", passage])
    chunks, _ = chunk_file(buffer.getvalue().encode(), ".csv", SIZE, OVERLAP)
    texts = [f"id: p{i}; passage: {p}" for i, p in enumerate(PASSAGES, start=1)]
    for chunk in chunks:
        assert len(_owner(chunk.text, texts)) == 1, f"chunk spans rows: {chunk.text!r}"
    assert [c.text for c in chunks] == _txt_chunks(texts)
    assert [c.record for c in chunks] == [f"p{i}" for i in range(1, len(PASSAGES) + 1)]


def test_a_record_file_added_under_the_old_rule_is_chunked_again(kb: KnowledgeBase, tmp_path: Path) -> None:
    """A knowledge base that holds a JSONL file chunked before records were kept apart re-chunks
    it when the file is added again; a .txt file, chunked as before, stays unchanged."""
    records = tmp_path / "passages.jsonl"
    records.write_bytes(_jsonl([{"text": t} for t in PASSAGES]))
    notes = tmp_path / "notes.txt"
    notes.write_text(PASSAGES[0], encoding="utf-8")
    kb.add([records, notes])
    for entry in kb.manifest.values():  # as a knowledge base written by the old rule recorded it
        entry["chunking"] = f"{kb.settings.chunk_size}/{kb.settings.chunk_overlap}"
    kb.save_index({}, [])
    report = kb.add([records, notes])
    status = {Path(f.path).name: f.status for f in report.files}
    assert status == {"passages.jsonl": "replaced", "notes.txt": "unchanged"}
    assert kb.add([records]).files[0].status == "unchanged"  # and once re-chunked, it stays

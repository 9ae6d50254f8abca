"""Chunking: CJK and Latin sentence boundaries, size bound, overlap."""

from __future__ import annotations

import itertools

import pytest

from assistant.knowledge.chunking import chunk_spans, chunk_text, normalize_text, sentence_spans


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end].strip() for s in sentence_spans(text)]


def test_sentence_boundaries_chinese_and_latin() -> None:
    text = "北京是首都。上海很大！你去过吗？“这是引用。”然后；Pi is 3.14 today. Really? Yes!\nNew line"
    assert sentences(text) == [
        "北京是首都。",
        "上海很大！",
        "你去过吗？",
        "“这是引用。”",
        "然后；",
        "Pi is 3.14 today.",
        "Really?",
        "Yes!",
        "New line",
    ]


def test_latin_stops_need_whitespace_after_them() -> None:
    # Decimals, versions, file names and URLs are not sentence ends.
    assert sentences("Use v1.2.3 of file.txt at http://x.io/a?b=1 now. Done") == [
        "Use v1.2.3 of file.txt at http://x.io/a?b=1 now.",
        "Done",
    ]


def test_chunks_respect_size_and_cut_on_sentence_boundaries() -> None:
    sentence = "这是一个用于测试分块的中文句子。"  # 16 characters
    text = sentence * 20
    chunks = chunk_text(text, size=50, overlap=0)
    assert all(len(c) <= 50 for c in chunks)
    assert all(c.endswith("。") for c in chunks)
    assert chunks[0] == sentence * 3  # 48 characters: a 4th sentence would not fit
    assert "".join(chunks) == text  # nothing lost, nothing repeated without overlap


def test_overlap_repeats_whole_sentences_from_the_previous_chunk() -> None:
    parts = [f"第{i}句话在这里。" for i in range(30)]  # 8 or 9 characters each
    chunks = chunk_text("".join(parts), size=50, overlap=16)
    assert len(chunks) > 3
    for previous, current in itertools.pairwise(chunks):
        assert len(current) <= 50
        shared = max(n for n in range(17) if current.startswith(previous[len(previous) - n :]))
        # Whole sentences, as many as fit in 16 characters: two short ones, or one long one.
        carried = previous[len(previous) - shared :]
        assert carried.startswith("第") and carried.endswith("。")
        assert carried.count("。") == (2 if len(carried) == 16 else 1)
    assert chunks[1].startswith("第4句话在这里。第5句话在这里。第6句")
    covered = "".join(chunks)
    assert all(part in covered for part in parts)


def test_overlap_falls_back_to_a_character_tail_for_long_sentences() -> None:
    text = "甲" * 45 + "。" + "乙" * 30 + "。" + "丙" * 45 + "。"
    chunks = chunk_text(text, size=50, overlap=10)
    # The last sentence (46 chars) is longer than the overlap: its last 10 characters are carried.
    assert chunks[:2] == ["甲" * 45 + "。", "甲" * 9 + "。" + "乙" * 30 + "。"]
    # Carrying 10 more characters would push the next chunk over 50: the carry is dropped.
    assert chunks[2] == "丙" * 45 + "。"


def test_a_sentence_longer_than_a_chunk_is_cut_at_a_comma_or_space() -> None:
    text = "，".join(["这是一个很长的子句"] * 20) + "。"
    chunks = chunk_text(text, size=40, overlap=0)
    assert all(len(c) <= 40 for c in chunks)
    assert all(c.endswith(("，", "。")) for c in chunks)
    english = " ".join(["word"] * 50)
    for chunk in chunk_text(english, size=30, overlap=0):
        assert len(chunk) <= 30 and not chunk.startswith("ord")  # cut at spaces, not inside words


def test_latin_overlap_starts_at_a_word_boundary() -> None:
    text = (
        "This is a fairly long sentence about retrieval that goes on and on without stopping "
        "for quite a while indeed. "
    ) * 3
    chunks = chunk_text(text, size=120, overlap=30)
    for chunk in chunks[1:]:
        assert chunk.split()[0] in text.split()


def test_normalize_and_no_whitespace_chunks() -> None:
    assert normalize_text("a\r\nb  \n\n\n\nc\u00a0d\ufeff") == "a\nb\n\nc d"
    assert chunk_text("  \n\n \n", 100, 10) == []
    assert chunk_spans("", 10, 0) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_sizes_are_rejected(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", size, overlap)

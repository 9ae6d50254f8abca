"""Loaders: every format built here, encodings (GBK included), and the errors bad files give."""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.knowledge.loaders import LoadError, decode_text, detect_encoding, load_bytes

CHINESE = "北京是中华人民共和国的首都，也是全国的政治、文化中心。北京有三千多年的建城史。"


@pytest.mark.parametrize("codec", ["gbk", "gb18030", "gb2312"])
def test_gbk_family_text_is_decoded(codec: str) -> None:
    assert decode_text(CHINESE.encode(codec)) == CHINESE
    assert decode_text("短句".encode(codec)) == "短句"  # two characters also decode as Big5: GBK wins


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CHINESE.encode("utf-8"), CHINESE),
        (codecs.BOM_UTF8 + CHINESE.encode("utf-8"), CHINESE),
        (CHINESE.encode("utf-16"), CHINESE),  # with BOM
        ("naïve café, déjà vu — résumé".encode("cp1252"), "naïve café, déjà vu — résumé"),
        ("繁體中文測試，這是一個句子。".encode("big5"), "繁體中文測試，這是一個句子。"),
    ],
)
def test_other_encodings(data: bytes, expected: str) -> None:
    assert decode_text(data).lstrip("\ufeff") == expected


def test_binary_data_is_refused() -> None:
    with pytest.raises(LoadError, match="binary"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(LoadError, match="binary"):
        decode_text(os.urandom(4096).replace(b"\x00", b"\x01"))
    assert detect_encoding(b"plain ascii") == "utf-8"


def test_markdown_and_text_keep_their_content() -> None:
    [section] = load_bytes(b"# Title\n\nSome *markdown* text.", ".md")
    assert section.text == "# Title\n\nSome *markdown* text." and section.page is None


def test_html_drops_scripts_styles_and_tags_and_decodes_entities() -> None:
    html = (
        "<html><head><title>Leave policy</title><style>p{color:red}</style></head><body>"
        "<script>alert('x')</script><h1>Annual leave</h1><p>Staff get 15 days &amp; more.</p>"
        "<ul><li>one</li><li>two</li></ul></body></html>"
    )
    [section] = load_bytes(html.encode(), ".html")
    assert "alert" not in section.text and "color" not in section.text
    assert "Staff get 15 days & more." in section.text
    assert section.text.startswith("Leave policy")  # the title is kept
    assert "one\n" in section.text and "two" in section.text  # list items on their own lines


def test_pdf_gives_one_section_per_page(pdf_bytes: Callable[[list[str]], bytes]) -> None:
    sections = load_bytes(pdf_bytes(["First page about apples.", "Second page (about pears)."]), ".pdf")
    assert [s.page for s in sections] == [1, 2]
    assert "apples" in sections[0].text and "pears" in sections[1].text


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n garbage that is not a pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF",
        b"not a pdf at all",
    ],
)
def test_corrupt_pdf_is_a_load_error(data: bytes) -> None:
    with pytest.raises(LoadError, match="PDF"):
        load_bytes(data, ".pdf")


def test_pdf_without_text_says_so(pdf_bytes: Callable[[list[str]], bytes]) -> None:
    with pytest.raises(LoadError, match="no extractable text"):
        load_bytes(pdf_bytes(["", ""]), ".pdf")


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path, docx_file: Callable[..., Path]) -> None:
    path = docx_file(
        tmp_path / "a.docx",
        ["员工手册", "年假为每年十五天。", "Sick leave is ten days."],
        table=[["项目", "天数"], ["年假", "15"]],
    )
    [section] = load_bytes(path.read_bytes(), ".docx")
    lines = [line for line in section.text.splitlines() if line]
    assert lines == ["员工手册", "年假为每年十五天。", "Sick leave is ten days.", "项目 | 天数", "年假 | 15"]


def test_corrupt_docx_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="DOCX"):
        load_bytes(b"PK\x03\x04 not really a zip", ".docx")


def test_csv_rows_become_labelled_records() -> None:
    data = "name,days,note\n年假,15,带薪\nSick leave,10,\n".encode("gbk")
    sections = load_bytes(data, ".csv")
    assert [(s.text, s.record) for s in sections] == [
        ("name: 年假; days: 15; note: 带薪", "row 1"),
        ("name: Sick leave; days: 10", "row 2"),
    ]


def test_csv_with_semicolons_is_sniffed() -> None:
    [section] = load_bytes(b"a;b\n1;2\n", ".csv")
    assert section.text == "a: 1; b: 2"


def test_jsonl_uses_the_text_field_or_all_fields() -> None:
    lines = [{"title": "Leave", "text": "Fifteen days a year."}, {"q": "年假几天？", "a": 15}, "plain string"]
    data = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines).encode()
    sections = load_bytes(data, ".jsonl")
    assert [s.text for s in sections] == [
        "Leave\nFifteen days a year.",
        "q: 年假几天？; a: 15",
        "plain string",
    ]


def test_jsonl_bad_line_names_the_line() -> None:
    with pytest.raises(LoadError, match="line 2 is not valid JSON"):
        load_bytes(b'{"text": "ok"}\n{broken\n', ".jsonl")


def test_unknown_extension() -> None:
    with pytest.raises(LoadError, match=r"unsupported file type \.exe"):
        load_bytes(b"MZ", ".exe")

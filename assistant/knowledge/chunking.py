"""Split text into overlapping chunks on sentence boundaries, Chinese and Latin alike.

Sizes are in characters, not tokens: a tokenizer-based splitter would tie the knowledge
base to one model, and tiktoken downloads at run time. A chunk never exceeds ``size``;
consecutive chunks share up to ``overlap`` characters, taken as whole sentences from the
end of the previous chunk when they fit, else as its last characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends after Chinese full stops (always: Chinese does not space sentences), after
# Latin ones when whitespace follows (so "3.14" and "e.g.x" stay whole), and at a newline.
# Closing quotes and brackets stay with the sentence they close.
_CLOSERS = "\"'”’」』）)】》〉"
_SENTENCE_END = re.compile(
    rf"[。！？；]+[{_CLOSERS}]*|[.!?;]+[{_CLOSERS}]*(?=\s|$)|…+[{_CLOSERS}]*|\n+",
)
# Where a sentence longer than a chunk may be cut, best first: after a clause mark, then at a space.
_SOFT_BREAKS = (re.compile(r"[，,、：:]"), re.compile(r"\s"))


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def normalize_text(text: str) -> str:
    """One newline convention, no trailing spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("\ufeff", "")
    text = re.sub(r"[ \t\f\v]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def sentence_spans(text: str) -> list[Span]:
    """Sentences as spans of ``text``, ending punctuation included, whitespace-only ones dropped."""
    spans: list[Span] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            spans.append(Span(start, end))
        start = end
    if text[start:].strip():
        spans.append(Span(start, len(text)))
    return spans


def _cut_long(text: str, span: Span, size: int) -> list[Span]:
    """Pieces of at most ``size`` characters, cut at a clause mark or space where one is near the end."""
    pieces: list[Span] = []
    start = span.start
    while span.end - start > size:
        window = text[start : start + size]
        cut = size
        for pattern in _SOFT_BREAKS:
            positions = [m.end() for m in pattern.finditer(window) if m.end() >= size // 2]
            if positions:
                cut = positions[-1]
                break
        pieces.append(Span(start, start + cut))
        start += cut
    pieces.append(Span(start, span.end))
    return pieces


def _overlap_start(text: str, chunk: list[Span], overlap: int) -> list[Span]:
    """The tail of ``chunk`` that the next chunk repeats: whole sentences if any fit."""
    if overlap <= 0 or not chunk:
        return []
    carried: list[Span] = []
    used = 0
    for span in reversed(chunk):
        if used + len(span) > overlap:
            break
        carried.insert(0, span)
        used += len(span)
    if carried:
        return carried
    last = chunk[-1]
    start = last.end - overlap
    # Start the character tail at a word boundary when the text has spaces (Latin text).
    space = text.find(" ", start, last.end)
    if space != -1 and space + 1 < last.end:
        start = space + 1
    return [Span(start, last.end)]


def chunk_spans(text: str, size: int, overlap: int) -> list[Span]:
    """Chunks of ``text`` as spans; see the module docstring for the rules."""
    if size <= 0:
        raise ValueError(f"chunk size must be > 0, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be in [0, size), got {overlap}")
    units: list[Span] = []
    for sentence in sentence_spans(text):
        units.extend(_cut_long(text, sentence, size) if len(sentence) > size else [sentence])

    chunks: list[Span] = []
    current: list[Span] = []
    fresh = False  # whether `current` holds anything beyond the overlap carried from the last chunk
    for unit in units:
        if current and unit.end - current[0].start > size:
            if fresh:
                chunks.append(Span(current[0].start, current[-1].end))
                current = _overlap_start(text, current, overlap)
                fresh = False
            # Drop carried sentences until the new one fits.
            while current and unit.end - current[0].start > size:
                current.pop(0)
        current.append(unit)
        fresh = True
    if current and fresh:
        chunks.append(Span(current[0].start, current[-1].end))
    return chunks


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Chunks of normalized ``text``, each stripped of surrounding whitespace."""
    text = normalize_text(text)
    out = []
    for span in chunk_spans(text, size, overlap):
        piece = text[span.start : span.end].strip()
        if piece:
            out.append(piece)
    return out


__all__ = ["Span", "chunk_spans", "chunk_text", "normalize_text", "sentence_spans"]

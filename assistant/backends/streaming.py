"""Token streaming without changing the backend contract.

``generate`` keeps returning whole ``Completion`` objects. A caller that wants the text as it
is produced (``ladder serve`` with ``stream: true``, the chat app) sets a sink for the
duration of one strategy call::

    with stream_to(deltas.append):
        (answer,) = strategy.answer([question])

A backend that can stream (``hf_local``, ``fake``) looks at ``current_sink()`` and, for a
batch of exactly one conversation, feeds the text it produces through a ``StopHoldback``
into the sink. The sink lives in a ``ContextVar``, so it follows the thread (or task) that
set it and never leaks into another request's generation.

What reaches the sink is always a prefix of the final completion text: the holdback never
emits text at or after a stop string, keeps back a tail that could be the start of one, and
(with ``strip``) leading and trailing whitespace, which the backend strips from its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from assistant.backends.base import trim_at_stop

log = logging.getLogger(__name__)

Sink = Callable[[str], None]

_SINK: ContextVar[Sink | None] = ContextVar("ladder_stream_sink", default=None)


@contextmanager
def stream_to(sink: Sink | None) -> Iterator[None]:
    """Send the text of a streaming backend's single-conversation generate calls to ``sink``."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


def current_sink() -> Sink | None:
    return _SINK.get()


class StopHoldback:
    """Turns raw text deltas into deltas that are safe to show.

    ``feed`` takes text as the model produces it; ``flush`` ends the stream. Everything sent
    to the sink, concatenated, equals ``trim_at_stop(raw, stop)`` (stripped when ``strip``),
    where ``raw`` is everything fed.
    """

    def __init__(self, sink: Sink, stop: Sequence[str] = (), *, strip: bool = False) -> None:
        self.sink = sink
        self.stop = tuple(s for s in stop if s)
        self.strip = strip
        self.raw = ""
        self.sent = ""
        self.stopped = False

    def feed(self, delta: str) -> None:
        if self.stopped or not delta:
            return
        self.raw += delta
        text, self.stopped = trim_at_stop(self.raw, self.stop)
        if self.stopped:
            self._send(text)
        else:
            self._send(text[: len(text) - self._partial_stop(text)])

    def flush(self) -> None:
        """The stream ended: send what was held back (except a stop string's start)."""
        if not self.stopped:
            self.stopped = True
            self._send(trim_at_stop(self.raw, self.stop)[0])

    def _partial_stop(self, text: str) -> int:
        """Length of the longest tail of ``text`` that a stop string starts with."""
        longest = 0
        for stop in self.stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _send(self, ready: str) -> None:
        if self.strip:
            # Trailing whitespace waits until something follows it: the answer is stripped.
            ready = ready.strip()
        if len(ready) > len(self.sent) and ready.startswith(self.sent):
            delta, self.sent = ready[len(self.sent) :], ready
            self.sink(delta)


def remainder(streamed: str, response: str) -> str:
    """What still has to be shown after ``streamed`` for the reader to see ``response``.

    The whole response when nothing streamed (a strategy or backend that does not stream, a
    RAG "not found" answer); the rest of it when the stream was its start. A stream that is
    not its start cannot be taken back: that is logged, and nothing more is sent.
    """
    if response.startswith(streamed):
        return response[len(streamed) :]
    log.warning(
        "the streamed text (%d chars) is not the start of the answer; sent as streamed", len(streamed)
    )
    return ""

"""A transformers streamer that sends the text of one generation to a stream sink.

``generate`` hands the streamer the prompt first, then each new token. The streamer decodes
all the new tokens so far each time (as the final answer is decoded: special tokens skipped),
and passes on only what the last decode added, through a ``StopHoldback``:
- a character split across tokens decodes to U+FFFD until its last byte arrives, so a
  trailing U+FFFD is held back (as ``TextStreamer`` holds back incomplete words);
- the answer is cut at the first stop string and stripped, so the holdback does the same.
Decoding the whole tail every step costs a few milliseconds over a few hundred tokens, far
below a forward pass, and keeps the streamed text equal to the answer's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers.generation.streamers import BaseStreamer

from assistant.backends.streaming import Sink, StopHoldback

_INCOMPLETE = "\ufffd"


class SinkStreamer(BaseStreamer):
    def __init__(self, tokenizer: Any, sink: Sink, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.holdback = StopHoldback(sink, stop, strip=True)
        self.tokens: list[int] = []
        self.decoded = ""
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call is the prompt
            self.prompt_seen = True
            return
        self.tokens.extend(int(token) for token in value.reshape(-1).tolist())
        self._advance(self._decode().rstrip(_INCOMPLETE))

    def end(self) -> None:
        self._advance(self._decode())
        self.holdback.flush()

    def _decode(self) -> str:
        return str(self.tokenizer.decode(self.tokens, skip_special_tokens=True))

    def _advance(self, text: str) -> None:
        # A decode that rewrote what was already passed on waits until it agrees again.
        if len(text) > len(self.decoded) and text.startswith(self.decoded):
            self.holdback.feed(text[len(self.decoded) :])
            self.decoded = text

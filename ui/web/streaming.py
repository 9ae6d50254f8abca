"""An answer computed on a thread while the page shows its text as the model produces it.

Streamlit draws from the script thread, so the strategy runs on a thread of its own with a
stream sink (``assistant.service.answer_streaming``) that puts each piece of text on a queue;
the page reads the queue through ``text()``. No Streamlit call is made off the script thread.

The object outlives a script run: when a run is interrupted (the user sent another
question), the next run finds it in the session, draws ``streamed`` (what was read so far)
and calls ``text()`` again to read on where the last reader stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from assistant.backends.streaming import remainder

if TYPE_CHECKING:
    from assistant.strategies.base import BaseStrategy
    from assistant.types import Answer, Question


class StreamedAnswer:
    def __init__(self, strategy: BaseStrategy, question: Question) -> None:
        self._pieces: queue.Queue[str | None] = queue.Queue()  # None: the strategy has returned
        self._answer: Answer | None = None
        self._error: Exception | None = None
        self.strategy = strategy
        self.latency_s = 0.0  # the answer's wall time, set when the strategy has returned
        self.streamed = ""  # every piece read so far, by every reader
        self._read_all = False
        self._thread = threading.Thread(
            target=self._run, args=(strategy, question), name="ladder-chat-answer", daemon=True
        )
        self._thread.start()

    def _run(self, strategy: BaseStrategy, question: Question) -> None:
        from assistant.service import answer_streaming

        started = time.perf_counter()
        try:
            self._answer = answer_streaming(strategy, question, self._pieces.put)
        except Exception as exc:  # raised again on the script thread, by result()
            self._error = exc
        finally:
            self.latency_s = time.perf_counter() - started
            self._pieces.put(None)

    def text(self) -> Iterator[str]:
        """The answer's text piece by piece; what did not stream comes whole at the end.

        A strategy that drafts (reflection, agent), a backend that does not stream and RAG's
        "not found" answer give one piece. The strategy's error is raised here. A second call
        goes on from where the first stopped reading (``streamed`` holds what it read).
        """
        while not self._read_all:
            piece = self._pieces.get()
            if piece is None:
                self._read_all = True
                break
            self.streamed += piece  # counted before it is yielded: a reader may not come back
            yield piece
        else:
            return
        rest = remainder(self.streamed, self.result().response)
        if rest:
            self.streamed += rest
            yield rest

    def result(self) -> Answer:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer

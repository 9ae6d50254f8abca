"""One worker thread for model calls, behind a bounded queue.

Generation is CPU-bound and a local model answers one request at a time anyway, so the
server runs every model call on a single thread. Up to ``queue_size`` more requests wait; the
next one is refused at once (``QueueFull``, HTTP 429) instead of piling up behind a queue no
client will live to see the end of.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class QueueFull(Exception):
    """The worker is busy and ``queue_size`` requests are already waiting."""


class Worker:
    def __init__(self, queue_size: int) -> None:
        self.capacity = queue_size + 1  # the one being answered, plus those waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ladder-model")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Requests accepted and not finished: running (at most one) plus waiting."""
        return self._pending

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            if self._pending >= self.capacity:
                raise QueueFull(f"{self._pending} request(s) in progress or waiting")
            self._pending += 1
        try:
            future = self._executor.submit(job)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _f: self._release())
        return future

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

"""Helpers shared by the strategy tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.backends.fake import FakeBackend
from assistant.types import Completion, GenParams, Message


class CountingFake(FakeBackend):
    """A fake that also records the size of every batched ``generate`` call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        self.batches.append(len(batch))
        return super().generate(batch, params)


def kinds(answer: Any) -> list[str]:
    """The kinds of an answer's trace steps, in order."""
    return [step.kind for step in answer.trace.steps]

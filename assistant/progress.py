"""Progress reporting for long work (pack pulls, conversion, later evaluation runs).

Library code reports through this small protocol; the CLI renders it with rich and the UI
with ``st.progress``, so long work shows progress wherever it is started.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None: ...

    def advance(self, amount: float = 1) -> None: ...

    def note(self, message: str) -> None: ...


class NullProgress:
    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        pass

    def advance(self, amount: float = 1) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class RecordingProgress(NullProgress):
    """Keeps every event; tests and the UI read it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        self.events.append(("start", (stage, total)))

    def advance(self, amount: float = 1) -> None:
        self.events.append(("advance", amount))

    def note(self, message: str) -> None:
        self.events.append(("note", message))

    @property
    def stages(self) -> list[str]:
        return [str(value[0]) for kind, value in self.events if kind == "start"]  # type: ignore[index]

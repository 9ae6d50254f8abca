"""What every ``ladder`` sub-command module shares: consoles, the settings flags, progress.

Kept apart from ``assistant.cli`` so the sub-command modules (kb, eval, suite) can import it
without importing the app that registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assistant.settings import Settings, load_settings


def console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="ladder.yaml to read settings from.")]
HomeOpt = Annotated[Path | None, typer.Option("--home", help="LADDER_HOME (default ~/.ladder).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for local models.")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Language of the reasons: en or zh.")]


def settings_from(config: Path | None, home: Path | None, **flags: Any) -> Settings:
    return load_settings({"home": home, **flags}, config=config)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class RichProgress:
    """Renders library progress on stderr with rich: one bar per stage."""

    def __init__(self, eta: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.fields[amount]}"), TimeElapsedColumn()]  # fmt: skip
        if eta:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        self._progress = Progress(*columns, console=err_console())
        self._task: Any = None
        self._unit = "items"

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish_current()
        self._progress.stop()

    def _amount(self, completed: float, total: float | None) -> str:
        if self._unit == "bytes":
            return f"{human_size(completed)}" + (f" / {human_size(total)}" if total else "")
        return f"{completed:.0f}" + (f" / {total:.0f}" if total else "")

    def _finish_current(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            done = task.total if task.total is not None else task.completed
            self._progress.update(self._task, completed=done, total=done or 1,
                                  amount=self._amount(done or 0, task.total))  # fmt: skip

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        self._finish_current()
        self._unit = unit
        self._task = self._progress.add_task(
            stage, total=total, amount=self._amount(0, total) if total else ""
        )

    def advance(self, amount: float = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)
            task = self._progress.tasks[-1]
            self._progress.update(self._task, amount=self._amount(task.completed, task.total))

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False)

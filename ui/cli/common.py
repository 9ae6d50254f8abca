"""What every ``ladder`` sub-command module shares: consoles, the settings flags, progress.

Kept apart from ``ui.cli.app`` so the sub-command modules (kb, eval, suite) can import it
without importing the app that registers them.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from assistant.settings import Settings, load_settings


def console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="ladder.yaml to read settings from.")]
HomeOpt = Annotated[Path | None, typer.Option("--home", help="LADDER_HOME (default ~/.ladder).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for local models.")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Language of the reasons: en or zh.")]


def reflow(text: str) -> str:
    """Help text with each paragraph on one line, so the help screen wraps it at the terminal's
    width: typer 0.2x keeps a docstring's single line breaks, which at 80 columns gives lines
    like "Every item passed the" / "checks (JSON, ...". Blank lines still separate paragraphs,
    and a paragraph that starts with ``\\b`` stays verbatim (click's no-rewrap marker)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def reflow_help(app: typer.Typer) -> None:
    """``reflow`` every command's and group's help in ``app``, recursively."""
    for command in app.registered_commands:
        text = command.help or inspect.getdoc(command.callback)
        if text:
            command.help = reflow(text)
    for group in app.registered_groups:
        if group.help:
            group.help = reflow(group.help)
        if group.typer_instance is not None:
            info = group.typer_instance.info
            if isinstance(info.help, str):
                info.help = reflow(info.help)
            reflow_help(group.typer_instance)


def settings_from(config: Path | None, home: Path | None, **flags: Any) -> Settings:
    return load_settings({"home": home, **flags}, config=config)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass(frozen=True)
class Col:
    """A column of a list table. ``drop`` orders what goes first when the terminal is narrow
    (0: never); a ``key`` column (an id, a status, a date) is never wrapped or cut."""

    header: str
    drop: int = 0
    key: bool = False
    min_width: int = 12
    justify: Literal["left", "right", "center"] = "left"


def fitted_table(title: str, columns: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> Table:
    """A table that fits ``width``: key columns get their full width, other columns wrap (at
    words, never cut to "su…"), and when even that does not fit, the columns with the highest
    ``drop`` are left out; the caption names them. Cells may hold rich markup."""
    from rich.text import Text

    def needed(index: int) -> int:
        column = columns[index]
        widest = max([Text.from_markup(str(row[index])).cell_len for row in rows] + [len(column.header)])
        return widest if column.key else min(widest, max(column.min_width, len(column.header)))

    kept = list(range(len(columns)))
    # A box table spends 3 cells per column (a border and one space each side) plus one.
    while sum(needed(i) for i in kept) + 3 * len(kept) + 1 > width:
        droppable = [i for i in kept if columns[i].drop > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    left_out = [columns[i].header for i in range(len(columns)) if i not in kept]
    caption = f"not shown at this width: {', '.join(left_out)}" if left_out else None
    table = Table(title=title, caption=caption)
    for i in kept:
        column = columns[i]
        table.add_column(column.header, justify=column.justify, no_wrap=column.key,
                         min_width=needed(i), overflow="fold")  # fmt: skip
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


def elapsed_text(seconds: float) -> str:
    """``4.2 s`` under a minute, else ``1:02:03`` / ``2:03``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RichProgress:
    """Renders library progress (the ``assistant.progress.Progress`` protocol) on stderr.

    On a terminal: a live bar for the step under way. When a step ends (the next one starts, or
    the block exits) it leaves the live display and prints one final line, ``✓ <step>  <amount>
    <its own elapsed time>``, so a finished step never keeps spinning or counting. In a log
    (stderr not a terminal: CI, a redirect, the UI's job worker) there is no live display, only
    plain lines: the step's start, a progress line at most every ``log_every_s`` seconds, and
    the same final line. A step cut short by an exception ends with ``✗`` instead.
    """

    def __init__(self, eta: bool = False, log_every_s: float = 30.0) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        self._console = err_console()
        self._live = self._console.is_terminal and not self._console.is_dumb_terminal
        # The label and the amount wrap rather than being cut to "loading smollm2-13…" on an
        # 80-column terminal; the bar is what gives way.
        columns: list[Any] = [
            SpinnerColumn(),
            TextColumn("{task.description}", table_column=Column(overflow="fold")),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5)),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
        ]
        if eta:
            from rich.progress import TimeRemainingColumn

            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        self._progress = Progress(*columns, console=self._console, expand=True)
        self._log_every_s = log_every_s
        self._task: Any = None
        self._stage: str | None = None
        self._total: float | None = None
        self._completed = 0.0
        self._unit = "items"
        self._started = self._last_line = 0.0

    def __enter__(self) -> RichProgress:
        if self._live:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._finish_current(failed=exc_type is not None)
        self._progress.stop()

    def _amount(self, completed: float, total: float | None) -> str:
        if self._unit == "bytes":
            return f"{human_size(completed)}" + (f" / {human_size(total)}" if total else "")
        unit = "" if self._unit == "items" else f" {self._unit}"
        if total:
            return f"{completed:.0f} / {total:.0f}{unit}"
        return f"{completed:.0f}{unit}" if completed else ""

    def _info(self) -> str:
        """Extra text after the amount (a subclass adds training metrics)."""
        return ""

    def _line(self, mark: str, elapsed: float) -> str:
        parts = [f"{mark} {self._stage}", self._amount(self._completed, self._total), self._info()]
        return "  ".join(part for part in parts if part) + f"  {elapsed_text(elapsed)}"

    def _finish_current(self, failed: bool = False) -> None:
        if self._stage is None:
            return
        elapsed = time.monotonic() - self._started
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._console.print(self._line("✗" if failed else "✓", elapsed), markup=False, soft_wrap=True)
        self._stage = None

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        self._finish_current()
        self._stage, self._total, self._completed, self._unit = stage, total, 0.0, unit
        self._started = self._last_line = time.monotonic()
        if self._live:
            self._task = self._progress.add_task(stage, total=total, amount=self._amount(0, total))
        else:
            # The total (when the label does not already count items): "training (30 steps)".
            shown = bool(total) and unit != "items"
            total_text = f" ({self._amount(0, total).partition(' / ')[2]})" if shown else ""
            self._console.print(f"… {stage}{total_text}", markup=False, soft_wrap=True)

    def advance(self, amount: float = 1) -> None:
        if self._stage is None:
            return
        self._completed += amount
        self._refresh()

    def _refresh(self) -> None:
        if self._task is not None:
            amount = "  ".join(p for p in (self._amount(self._completed, self._total), self._info()) if p)
            self._progress.update(self._task, completed=self._completed, amount=amount)
        elif not self._live:
            now = time.monotonic()
            if now - self._last_line >= self._log_every_s:
                self._last_line = now
                self._console.print(self._line("…", now - self._started), markup=False, soft_wrap=True)

    def note(self, message: str) -> None:
        self._console.print(message, markup=False, soft_wrap=True)


def generation_options(n: int, seed: int, multi_hop: float, max_attempts: int, batch_size: int) -> Any:
    """The question generator's ``GenerateConfig`` from the flags ``ladder suite generate`` and
    ``ladder finetune synthesize`` share; a value out of range is a usage error, not a traceback."""
    from assistant.errors import ConfigError
    from evaluation.generate.engine import GenerateConfig

    try:
        return GenerateConfig(
            n=n, seed=seed, multi_hop_share=multi_hop, max_attempts=max_attempts, batch_size=batch_size
        )
    except ValueError as exc:
        raise ConfigError(
            str(exc), hint="--n and --max-attempts are positive; --multi-hop is in 0..1"
        ) from None


DeploymentOpt = Annotated[
    str | None,
    typer.Option(
        "--deployment",
        help="Answer with a deployment's chosen format (`ladder deployments list`) instead of --model.",
    ),
]


def deployment_model(name: str, model: str | None, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The model reference and settings overrides (e.g. dtype) of deployment ``name``'s chosen
    format, for ``ladder serve`` and ``ladder chat-ui``; one line when it chose none."""
    from assistant.errors import ConfigError
    from evaluation.deploy.record import load_deployment

    if model is not None:
        raise ConfigError("give --model or --deployment, not both")
    chosen = load_deployment(name, settings).chosen_format()
    if chosen is None:
        raise ConfigError(
            f"deployment {name!r} chose no format (none met its targets)",
            hint=f"see `ladder deployments show {name}`, or serve a format with --model",
        )
    return chosen.model_ref, dict(chosen.settings)


def print_verdict(
    lines: Sequence[str], title: str, header: Sequence[str], rows: Sequence[Sequence[str]]
) -> None:
    """A verdict as ``ladder decide`` and ``ladder deploy`` print it: the first line in bold, the
    table (Markdown bold stripped), then the other lines as a list."""
    from rich.markup import escape

    out = console()
    out.print(f"[bold]{escape(lines[0])}[/bold]")
    table = Table(title=title)
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*[escape(cell.replace("**", "")) for cell in row])
    out.print(table)
    for line in lines[1:]:
        out.print(f"- {escape(line)}")

"""``ladder kb``: create, fill, search and inspect knowledge bases.

Registered in ``ui.cli.app`` as ``app.add_typer(kb_app, name="kb")``. Importing this
module imports nothing heavy: chromadb, torch and sentence-transformers load inside the
commands that need them.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assistant.errors import LadderError
from ui.cli.common import Col, ConfigOpt, HomeOpt, fitted_table, settings_from

if TYPE_CHECKING:
    from assistant.knowledge import IngestReport

kb_app = typer.Typer(
    help="Knowledge bases: ingest documents, search them (dense + BM25).", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Knowledge base name.")]


class SourceNotFound(LadderError):
    exit_code = 3


def _out() -> Console:
    return Console(highlight=False)


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@kb_app.command("create")
def kb_create(
    name: NameArg,
    embedding_model: Annotated[
        str | None,
        typer.Option(help="sentence-transformers folder (default: the packaged all-MiniLM-L6-v2)."),
    ] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Create an empty knowledge base."""
    from assistant.knowledge import KnowledgeBase

    settings = settings_from(config, home, embedding_model=embedding_model)
    kb = KnowledgeBase.create(name, settings)
    _out().print(
        f"created knowledge base [bold]{escape(name)}[/bold] at {escape(str(kb.folder))} "
        f"(embeddings: {escape(kb.meta['embedding_model'])})"
    )
    _out().print(f"[dim]next: ladder kb add {escape(name)} PATH...[/dim]")


_STATUS_STYLE = {
    "added": "green",
    "replaced": "cyan",
    "unchanged": "dim",
    "duplicate": "yellow",
    "skipped": "dim",
    "failed": "red",
}


def _report_table(report: IngestReport, width: int) -> Table:
    rows = []
    for item in report.files:
        style = _STATUS_STYLE.get(item.status, "default")
        counted = item.status not in ("skipped", "failed")
        rows.append([escape(item.path), f"[{style}]{item.status}[/{style}]",
                     str(item.chunks_added) if counted else "", str(item.chunks_removed or ""),
                     str(item.pages or ""), escape(item.reason or "")])  # fmt: skip
    columns = [Col("file", min_width=20), Col("status", key=True),
               Col("chunks added", drop=1, justify="right"), Col("removed", drop=3, justify="right"),
               Col("pages", drop=2, justify="right"), Col("note", min_width=24)]  # fmt: skip
    return fitted_table("ingest report", columns, rows, width)


@kb_app.command("add")
def kb_add(
    name: NameArg,
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (.txt .md .html .pdf .docx .csv .jsonl).")
    ],
    chunk_size: Annotated[int | None, typer.Option(help="Chunk size in characters.")] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="Characters shared by neighbouring chunks.")
    ] = None,
    max_file_mb: Annotated[float | None, typer.Option(help="Skip files larger than this.")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Ingest files and folders; prints one row per file, skipped ones included. Exits 1 if a file
    failed or nothing was ingested."""
    from assistant.knowledge import IngestFailed, KnowledgeBase
    from assistant.knowledge.loaders import SUPPORTED_EXTENSIONS
    from ui.cli.common import RichProgress

    settings = settings_from(
        config, home, chunk_size=chunk_size, chunk_overlap=chunk_overlap, max_file_mb=max_file_mb
    )
    kb = KnowledgeBase.open(name, settings)
    with RichProgress() as progress:
        report = kb.add(paths, progress=progress)
    out = _out()
    if report.files:
        out.print(_report_table(report, out.width))
    counts = ", ".join(
        f"{report.count(s)} {s}"
        for s in ("added", "replaced", "unchanged", "duplicate", "skipped", "failed")
        if report.count(s)
    )
    out.print(
        f"{counts or 'no files'}; {report.chunks_added} chunks added, {report.chunks_removed} removed "
        f"in {report.seconds:.1f} s"
    )
    if not report.in_base:
        # Everything skipped or failed (or an empty folder): the run did nothing, say so.
        if not report.files:
            shown = ", ".join(str(p) for p in paths)
            message = f"nothing to ingest: no files under {shown}"
        else:
            message = (
                f"nothing was ingested: {len(report.skipped)} path(s) skipped, "
                f"{len(report.failed)} failed (reasons in the report above)"
            )
        raise IngestFailed(
            message,
            hint=f"supported types: {' '.join(SUPPORTED_EXTENSIONS)}; hidden files and symlinked "
            "folders inside a folder are skipped unless named directly",
        )
    if report.failed:
        listed = "; ".join(f"{f.path} ({f.reason})" for f in report.failed[:5])
        more = f"; and {len(report.failed) - 5} more" if len(report.failed) > 5 else ""
        tried = len(report.files) - len(report.skipped)
        raise IngestFailed(
            f"{len(report.failed)} of {tried} files failed: {listed}{more}",
            hint="the other files were ingested; fix these and run the same command again",
        )


@kb_app.command("list")
def kb_list(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Knowledge bases under LADDER_HOME."""
    from assistant.knowledge import KnowledgeBase

    settings = settings_from(config, home)
    names = KnowledgeBase.list_all(settings)
    if not names:
        _out().print(
            f"no knowledge bases in {escape(str(settings.kb_dir))}; create one with `ladder kb create NAME`"
        )
        return
    table = Table(title=f"knowledge bases in {settings.kb_dir}")
    for column in ("name", "sources", "chunks", "embedding model", "created"):
        table.add_column(column)
    for name in names:
        info = KnowledgeBase.summary(name, settings)
        table.add_row(
            escape(name),
            str(info["sources"]),
            str(info["chunks"]),
            escape(info["embedding_model"]),
            _when(info["created_at"]),
        )
    _out().print(table)


@kb_app.command("search")
def kb_search(
    name: NameArg,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--k", help="How many chunks to return.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    rerank: Annotated[
        bool | None,
        typer.Option(
            "--rerank/--no-rerank",
            help="Rerank with reranker_model (a CrossEncoder folder, llm or llm:<model>; default: if set).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Search a knowledge base and print the best chunks."""
    from assistant.knowledge import KnowledgeBase
    from assistant.knowledge.retrieve import order_score

    settings = settings_from(config, home)
    kb = KnowledgeBase.open(name, settings)
    hits = kb.search(query, k=k, mode=mode, rerank=rerank)
    if as_json:
        print(json.dumps([asdict(hit) for hit in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        _out().print("no matches")
        return
    # The score column is what the hits are ordered by (the fused score, the cosine or the BM25
    # score, by mode); relevance is the absolute score a "not in the knowledge base" threshold
    # (min_score) compares, which can disagree with the order.
    table = Table(title=f"{mode} search in {name}")
    table.add_column("#", justify="right")
    reranked = any(hit.rerank_score is not None for hit in hits)
    column = {"hybrid": "score (fused)", "dense": "score (cosine)", "bm25": "score (BM25)"}[mode]
    table.add_column("score (reranker)" if reranked else column, justify="right")
    table.add_column("relevance", justify="right")
    table.add_column("source", overflow="fold")
    table.add_column("chunk", justify="right")
    table.add_column("text", overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        where = hit.source + (f" p.{hit.page}" if hit.page is not None else "")
        snippet = " ".join(hit.text.split())
        snippet = snippet[:200] + ("…" if len(snippet) > 200 else "")
        table.add_row(str(rank), f"{order_score(hit, mode):.3f}", f"{hit.score:.3f}", escape(where),
                      str(hit.chunk), escape(snippet))  # fmt: skip
    _out().print(table)


@kb_app.command("remove")
def kb_remove(
    name: NameArg,
    source: Annotated[str, typer.Argument(help="A source file (or folder) as `ladder kb info` lists it.")],
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Remove a source file (or every file under a folder) from a knowledge base."""
    from assistant.knowledge import KnowledgeBase

    settings = settings_from(config, home)
    kb = KnowledgeBase.open(name, settings)
    removed = kb.remove_source(source)
    if not removed:
        raise SourceNotFound(
            f"no source matching {source} in knowledge base {name!r}",
            hint=f"`ladder kb info {name}` lists the sources",
        )
    _out().print(f"removed {removed} chunks of {escape(source)} from {escape(name)}")


@kb_app.command("info")
def kb_info(name: NameArg, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Details of a knowledge base and its sources."""
    from assistant.knowledge import KnowledgeBase

    settings = settings_from(config, home)
    kb = KnowledgeBase.open(name, settings)
    info = kb.info()
    table = Table(title=f"knowledge base {name}", show_header=False)
    table.add_column("item")
    table.add_column("value", overflow="fold")
    for key in (
        "path",
        "store",
        "embedding_model",
        "embedding_dim",
        "sources",
        "chunks",
        "chunk_size",
        "chunk_overlap",
        "reranker_model",
    ):
        table.add_row(key, escape(str(info[key])))
    table.add_row("created", _when(info["created_at"]))
    table.add_row("disk", _size(info["disk_bytes"]))
    out = _out()
    out.print(table)
    sources = kb.sources()
    if sources:
        listing = Table(title="sources")
        for column in ("source", "chunks", "pages", "size", "added"):
            listing.add_column(column, overflow="fold" if column == "source" else "ellipsis")
        for item in sources:
            listing.add_row(
                escape(item.source),
                str(item.chunks),
                str(item.pages or ""),
                _size(item.size_bytes),
                _when(item.added_at),
            )
        out.print(listing)


@kb_app.command("delete")
def kb_delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Delete a knowledge base and everything in it."""
    from assistant.knowledge import KnowledgeBase

    settings = settings_from(config, home)
    if name not in KnowledgeBase.list_all(settings):
        KnowledgeBase.delete(name, settings)  # raises the not-found error with its hint
    if not yes:
        typer.confirm(f"delete knowledge base {name!r} and all its chunks?", abort=True)
    KnowledgeBase.delete(name, settings)
    _out().print(f"deleted knowledge base {escape(name)}")


__all__ = ["kb_app"]

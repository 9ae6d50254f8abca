"""``ladder doctor``: versions, LADDER_HOME, packs, the knowledge-base store, disk, RAM, threads and the
offline state."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ui.cli.common import ConfigOpt, HomeOpt, console, human_size, settings_from

if TYPE_CHECKING:
    from assistant.settings import Settings


_DOCTOR_PACKAGES = ("torch", "transformers", "peft", "trl", "gguf", "langchain-core", "langgraph",
                    "chromadb", "ragas", "sentence-transformers", "streamlit", "openai")  # fmt: skip


def doctor_cmd(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Versions, LADDER_HOME, packs, disk, RAM, threads and the offline state."""
    import platform
    import shutil
    from importlib.metadata import PackageNotFoundError, version

    import psutil

    from assistant import __version__
    from assistant.models.pull import list_installed
    from assistant.offline import offline_state

    settings = settings_from(config, home)
    out = console()
    problems: list[str] = []
    table = Table(title=f"ladder {__version__} doctor", show_header=False)
    table.add_column("item")
    table.add_column("value")
    table.add_row("python", f"{platform.python_version()} ({sys.executable})")
    for package in _DOCTOR_PACKAGES:
        try:
            table.add_row(package, version(package))
        except PackageNotFoundError:
            table.add_row(package, "[red]not installed[/red]")
            problems.append(f"{package} is not installed")
    table.add_row("LADDER_HOME", f"{settings.home} ({settings.sources['home']})")
    settings.home.mkdir(parents=True, exist_ok=True)
    if not os.access(settings.home, os.W_OK):
        problems.append(f"LADDER_HOME {settings.home} is not writable")
    table.add_row("data", _data_line(problems))
    packs = list_installed(settings)
    table.add_row("packs", ", ".join(f"{p['name']} ({human_size(p['size_bytes'])})" for p in packs) or "none")
    if not [p for p in packs if p.get("kind", "llm") == "llm"]:
        problems.append("no language model pack installed: run `ladder models pull smollm2-135m`")
    table.add_row("default model", f"{settings.model} ({settings.sources['model']})")
    table.add_row("embedding model", _embedding_line(settings, problems))
    table.add_row("kb store", _store_line(settings, problems))
    table.add_row("knowledge bases", _knowledge_bases_line(settings))
    free = shutil.disk_usage(settings.home).free
    table.add_row("free disk", human_size(free))
    memory = psutil.virtual_memory()
    table.add_row("RAM", f"{human_size(memory.available)} available of {human_size(memory.total)}")
    table.add_row("threads", _threads_line(settings.threads, settings.sources["threads"], problems))
    table.add_row("dtype / device", _dtype_line(settings))
    from assistant.backends.llama_cpp import engine_line

    engine, engine_problem = engine_line()
    table.add_row("llama.cpp engine", engine)
    if engine_problem:
        problems.append(engine_problem)
    state = offline_state()
    offline = state.get("HF_HUB_OFFLINE") == "1"
    table.add_row("offline", ("yes" if offline else "[yellow]no[/yellow]") + "  " +
                  " ".join(f"{k}={v}" for k, v in state.items()))  # fmt: skip
    if not offline:
        problems.append("HF_HUB_OFFLINE is not 1: model code may reach the Hugging Face hub")
    out.print(table)
    for problem in problems:
        out.print(f"[yellow]![/yellow] {problem}")
    if any("not writable" in p or "not installed" in p.split(":")[0] for p in problems if "pack" not in p):
        raise typer.Exit(1)


def _embedding_line(settings: Settings, problems: list[str]) -> str:
    """The embedding model new knowledge bases get, and whether it is there."""
    from assistant.errors import ModelNotFoundError
    from assistant.knowledge.embeddings import DEFAULT_EMBEDDER_PACK, embedding_model

    source = settings.sources.get("embedding_model", "default")
    try:
        identity, path = embedding_model(settings)
    except ModelNotFoundError as exc:
        problems.append(f"embedding model: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return f"[red]{settings.embedding_model or DEFAULT_EMBEDDER_PACK} missing[/red] ({source})"
    return f"{identity} ({source}) {path}"


def _store_line(settings: Settings, problems: list[str]) -> str:
    """Where new knowledge bases keep their vectors, and for a server whether it answers (its
    address, heartbeat and collection count; whether a token is set, never the token)."""
    if settings.kb_store == "embedded":
        source = settings.sources.get("kb_store", "default")
        return f"embedded ({source}): Chroma folders under {settings.kb_dir}"
    from assistant.knowledge.chroma_server import describe

    info = describe(settings)
    tls, token = "on" if info["tls"] else "off", "set" if info["token"] else "not set"
    source = settings.sources.get("kb_store", "default")
    head = f"chroma-server {info['address']} ({source}; tls {tls}; token {token})"
    if not info["ok"]:
        problems.append(info["error"])
        return f"{head}: [red]heartbeat failed[/red]"
    return f"{head}: heartbeat ok ({info['latency_s'] * 1000:.0f} ms), {info['collections']} collections"


def _knowledge_bases_line(settings: Settings) -> str:
    """How many knowledge bases there are in each store (read from kb.json, no store opened)."""
    from collections import Counter

    kinds: Counter[str] = Counter()
    for path in sorted(settings.kb_dir.glob("*/kb.json")) if settings.kb_dir.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8")).get("store") or {}
        except (OSError, ValueError, AttributeError):
            record = {"kind": "unreadable kb.json"}
        kinds[str(record.get("kind", "embedded"))] += 1
    return ", ".join(f"{n} on {kind}" for kind, n in sorted(kinds.items())) or "none"


def _threads_line(threads: int, source: str, problems: list[str]) -> str:
    """Threads, CPUs, the load other processes put on them and the OpenMP wait policy: with
    threads that spin on busy cores one answer took 11.8 s instead of 4.3 s (benchmarks/threads.py)."""
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    policy = os.environ.get("OMP_WAIT_POLICY", "") or "unset"
    spin = os.environ.get("GOMP_SPINCOUNT", "") or "unset"
    if load > cpus / 2 and not policy.upper().startswith("PASSIVE") and threads > 1:
        problems.append(f"the CPUs are busy (load {load:.1f}) and OpenMP threads spin: "
                        "unset OMP_WAIT_POLICY and GOMP_SPINCOUNT (Ladder then sets a short spin) "
                        "or use --threads 1")  # fmt: skip
    return (f"{threads} ({source}); {cpus} CPUs, load {load:.1f}; idle threads wait: "
            f"OMP_WAIT_POLICY={policy} GOMP_SPINCOUNT={spin}")  # fmt: skip


def _dtype_line(settings: Settings) -> str:
    """The dtype setting, and what ``auto`` chose on this machine if it has measured."""
    line = f"{settings.dtype} / {settings.device}"
    if settings.dtype == "auto":
        try:
            profile = json.loads((settings.home / "cpu_profile.json").read_text(encoding="utf-8"))
            line += f" (auto picked {profile['faster']} on this CPU)"
        except (OSError, ValueError, KeyError):
            line += " (auto measures on the first model load)"
    return line + "; exam scores use a float32 head"


def _data_line(problems: list[str]) -> str:
    """Where the data Ladder ships (built-in suites, general set, demo) is read from."""
    from assistant.errors import LadderError
    from assistant.resources import builtin_suites, datasets_dir

    try:
        return f"{datasets_dir()} ({len(builtin_suites())} built-in suites)"
    except LadderError as exc:
        problems.append(f"{exc.message}: {exc.hint}" if exc.hint else exc.message)
        return "[red]missing[/red]"

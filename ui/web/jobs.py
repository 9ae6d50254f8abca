"""Background jobs: long work runs in its own process, with its state on disk.

A job is a folder ``LADDER_HOME/ui/jobs/<id>/`` holding ``spec.json`` (what to do, written
once), ``state.json`` (status, stage, progress, notes, result; written by the worker) and
``log.txt`` (the worker's output). The page only reads these files, so a reload, a second
browser tab or a restarted server reconnects to a job that is still running, and a job
survives the page that started it. ``stop`` interrupts the worker's process group.

The worker is ``python -m ui.web.worker JOB_DIR``; it calls the same APIs as the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.store import _pid_alive as pid_alive  # one liveness check (zombies count as dead)

if TYPE_CHECKING:
    from assistant.settings import Settings

QUEUED, RUNNING, DONE, FAILED, STOPPED, DIED = "queued", "running", "done", "failed", "stopped", "died"
FINISHED = (DONE, FAILED, STOPPED, DIED)
KINDS = ("eval", "kb_add", "decide", "pull", "cli", "demo_kb", "retest")
# Child processes started by this server; polling them reaps them (no zombies).
_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}


@dataclass
class Job:
    job_id: str
    kind: str
    title: str | dict[str, Any]  # plain text, or ``ui.web.i18n.lazy(key, ...)`` translated when shown
    params: dict[str, Any]
    created: float
    folder: Path
    pid: int | None = None
    status: str = QUEUED
    stage: str = ""
    done: float = 0.0
    total: float | None = None
    unit: str = ""
    notes: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    updated: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def log_tail(self, lines: int = 20) -> str:
        path = self.folder / "log.txt"
        if not path.is_file():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def jobs_dir(settings: Settings) -> Path:
    path = settings.home / "ui" / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def launch(settings: Settings, kind: str, params: dict[str, Any], title: str | dict[str, Any]) -> Job:
    """Start a worker process for ``kind`` with ``params``; returns at once."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    folder = jobs_dir(settings) / job_id
    folder.mkdir(parents=True)
    spec = {"job_id": job_id, "kind": kind, "title": title, "params": params, "created": time.time()}
    write_json(folder / "spec.json", spec)
    write_json(folder / "state.json", {"status": QUEUED, "updated": time.time()})
    env = {**os.environ, "LADDER_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"}
    with (folder / "log.txt").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ui.web.worker", str(folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches its children too
            env=env,
        )
    _CHILDREN[job_id] = process
    spec["pid"] = process.pid
    write_json(folder / "spec.json", spec)
    return load(folder)


def load(folder: Path) -> Job:
    spec = _read_json(folder / "spec.json")
    state = _read_json(folder / "state.json")
    job = Job(
        job_id=str(spec.get("job_id", folder.name)),
        kind=str(spec.get("kind", "")),
        title=spec.get("title") or "",
        params=dict(spec.get("params") or {}),
        created=float(spec.get("created", 0.0)),
        folder=folder,
        pid=state.get("pid") or spec.get("pid"),
        status=str(state.get("status", QUEUED)),
        stage=str(state.get("stage", "")),
        done=float(state.get("done", 0.0)),
        total=state.get("total"),
        unit=str(state.get("unit", "")),
        notes=list(state.get("notes") or []),
        result=dict(state.get("result") or {}),
        error=state.get("error"),
        updated=float(state.get("updated", 0.0)),
    )
    child = _CHILDREN.get(job.job_id)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(job.job_id, None)
    if not job.finished and job.pid and not pid_alive(job.pid):
        job = load_again(folder, job)
    return job


def load_again(folder: Path, job: Job) -> Job:
    """The process is gone: read the state once more (it may have just finished), else it died."""
    state = _read_json(folder / "state.json")
    if state.get("status") in FINISHED:
        job.status = str(state["status"])
        job.result = dict(state.get("result") or {})
        job.error = state.get("error")
        return job
    job.status = DIED
    job.error = job.error or "the worker process ended without finishing (see its log)"
    return job


def get(settings: Settings, job_id: str) -> Job | None:
    folder = jobs_dir(settings) / job_id
    return load(folder) if (folder / "spec.json").is_file() else None


def list_jobs(settings: Settings, kind: str | None = None, limit: int = 20) -> list[Job]:
    """Newest first."""
    folders = sorted((p for p in jobs_dir(settings).iterdir() if p.is_dir()), reverse=True)
    out: list[Job] = []
    for folder in folders:
        job = load(folder)
        if kind is None or job.kind == kind:
            out.append(job)
        if len(out) >= limit:
            break
    return out


def active(settings: Settings, kind: str) -> list[Job]:
    return [job for job in list_jobs(settings, kind) if not job.finished]


def stop(job: Job, grace_s: float = 5.0) -> None:
    """Interrupt the worker (Ctrl-C: runs and trainings stop cleanly and stay resumable)."""
    if not job.pid or not pid_alive(job.pid):
        return
    try:
        os.killpg(job.pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.time() + grace_s
    while time.time() < deadline and pid_alive(job.pid):
        child = _CHILDREN.get(job.job_id)
        if child is not None:
            child.poll()
        time.sleep(0.1)
    if pid_alive(job.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGTERM)


def wait(settings: Settings, job_id: str, timeout_s: float = 60.0) -> Job:
    """Block until the job finishes (tests and scripts; the pages poll instead)."""
    deadline = time.time() + timeout_s
    while True:
        job = get(settings, job_id)
        if job is None:
            raise KeyError(job_id)
        if job.finished or time.time() > deadline:
            return job
        time.sleep(0.2)

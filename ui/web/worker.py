"""The background worker: ``python -m ui.web.worker JOB_DIR`` runs one job and records its state.

It calls the same APIs as the CLI (the runner, the knowledge base, the decision engine, pack
pulls; ``cli`` jobs run a ``ladder`` command line in-process), reporting progress into
``state.json`` through ``FileProgress``. Ctrl-C (the page's Stop) ends it as ``stopped``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import assistant.offline  # noqa: F401  (privacy env before anything heavy)
from assistant.errors import LadderError
from assistant.settings import Settings, load_settings, replace
from ui.web.jobs import DONE, FAILED, RUNNING, STOPPED, _read_json, write_json


class FileProgress:
    """The ``Progress`` protocol, written to ``state.json`` (at most a few times a second)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "state.json"
        self.state: dict[str, Any] = {"status": RUNNING, "notes": [], "done": 0.0, "total": None}
        self._last = 0.0

    def update(self, force: bool = True, **values: Any) -> None:
        self.state.update(values)
        now = time.time()
        if force or now - self._last > 0.25:
            self.state["updated"] = now
            write_json(self.path, self.state)
            self._last = now

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        self.update(stage=stage, total=total, unit=unit, done=0.0)

    def advance(self, amount: float = 1) -> None:
        self.update(force=False, done=float(self.state.get("done") or 0.0) + amount)

    def note(self, message: str) -> None:
        self.update(notes=[*self.state["notes"], str(message)][-20:])

    def metrics(self, step: int, total: int, values: dict[str, float]) -> None:
        self.update(force=False, stage="training", done=float(step), total=float(total), unit="steps")


def _eval(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    from evaluation.runner import EvalPlan, Runner

    plan = EvalPlan(
        suite=params["suite"],
        strategies=list(params.get("strategies") or ["prompt"]),
        model=params.get("model"),
        judge=params.get("judge"),
        no_judge=bool(params.get("no_judge", True)),
        mode=params.get("mode"),
        kb=params.get("kb"),
        limit=params.get("limit"),
    )
    run = Runner(settings, progress=progress).run(plan)
    return {"run_id": run.run_id, "failures": run.failures}


def _kb_add(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    from assistant.knowledge import KnowledgeBase

    changes: dict[str, Any] = {"allowed_roots": params["root"]}
    for key in ("chunk_size", "chunk_overlap"):
        if params.get(key) is not None:
            changes[key] = int(params[key])
    kb = KnowledgeBase.open(params["name"], replace(settings, **changes))
    report = kb.add([Path(p) for p in params["paths"]], progress=progress)
    kb.close()
    return {
        "files": [asdict(f) for f in report.files],
        "ignored": report.ignored,
        "chunks_added": report.chunks_added,
        "seconds": report.seconds,
    }


def _decide(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    from evaluation.decide.engine import load_decision_config, run_decision
    from evaluation.decide.report import write_all

    config = load_decision_config(Path(params["config"]))
    decision = run_decision(
        config,
        settings,
        progress,
        allow_finetune=params.get("allow_finetune"),
        language=params.get("language"),
    )
    paths = write_all(decision, Path(params["out"])) if params.get("out") else []
    return {"decision_id": decision.decision_id, "status": decision.status, "files": [str(p) for p in paths]}


def _pull(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    from assistant.models.pull import pull_pack

    path = pull_pack(params["name"], settings, progress=progress, force=bool(params.get("force")))
    return {"path": str(path)}


def _demo_kb(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    """The demo knowledge base, as ``ladder demo`` builds it (the Decide page's first-run button)."""
    from assistant.knowledge import KnowledgeBase
    from evaluation.decide.demo import DEMO_KB, ensure_kb

    seconds = ensure_kb(settings, progress)
    with KnowledgeBase.open(DEMO_KB, settings) as kb:
        sources = kb.sources()
    return {
        "kb": DEMO_KB,
        "files": len(sources),
        "chunks": sum(s.chunks for s in sources),
        "seconds": seconds,
    }


def _cli(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    from ui.cli.app import main

    argv = [str(a) for a in params["argv"]]
    progress.start("ladder " + " ".join(argv[:2]))
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 130:
            raise KeyboardInterrupt from None
        if code:
            raise LadderError(
                f"`ladder {' '.join(argv[:3])}` exited with code {code} (see the log)"
            ) from None
    return {"argv": argv}


def _retest(params: dict[str, Any], settings: Settings, progress: FileProgress) -> dict[str, Any]:
    """The monitor's way back to the ladder; a decision whose new verdict is "not met" is a result."""
    from evaluation.monitor import retest

    result = retest(settings, params["decision"], keep_old=bool(params.get("keep_old")), progress=progress)
    data: dict[str, Any] = result.to_dict()
    return data


RUNNERS = {
    "eval": _eval,
    "kb_add": _kb_add,
    "decide": _decide,
    "pull": _pull,
    "cli": _cli,
    "demo_kb": _demo_kb,
    "retest": _retest,
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_job(folder: Path) -> int:
    spec = _read_json(folder / "spec.json")
    progress = FileProgress(folder)
    progress.update(status=RUNNING, pid=__import__("os").getpid(), stage="starting")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = load_settings()
        result = RUNNERS[spec["kind"]](dict(spec.get("params") or {}), settings, progress)
    except KeyboardInterrupt:
        progress.update(status=STOPPED, error="stopped by the user")
        return 130
    except LadderError as exc:
        message = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        print(f"error: {message}", flush=True)
        progress.update(status=FAILED, error=message)
        return 1
    except Exception as exc:
        traceback.print_exc()
        progress.update(status=FAILED, error=f"{type(exc).__name__}: {exc}")
        return 1
    progress.update(status=DONE, result=result)
    return 0


def main() -> None:
    if len(sys.argv) != 2:
        print("usage: python -m ui.web.worker JOB_DIR", file=sys.stderr)
        sys.exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(run_job(Path(sys.argv[1])))


if __name__ == "__main__":
    main()

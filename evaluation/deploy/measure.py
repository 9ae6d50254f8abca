"""One serving format measured in a process of its own, so its peak RSS is its own.

The parent writes a job (the model reference, the settings to load it with, the decision's
test split, strategy and statistics) to a JSON file and runs ``python -m
evaluation.deploy.measure JOB RESULT``. The child

1. loads the backend (``load_s``, the RSS right after),
2. decodes one fixed prompt for ``DECODE_TOKENS`` new tokens, greedy, after a short warm-up,
   streamed (single-stream tokens/s after the first token: the prompt's prefill excluded),
3. evaluates the strategy on the test split through the evaluation runner with that backend,
   batched as any evaluation is (questions/s = 1 / the runner's compute seconds per question;
   the run and its items go into ``ladder.db`` as every run does),

and writes its peak RSS (``VmHWM``, the whole process: interpreter, libraries, weights and
the batched run's activations) with the rest to the result file. Progress comes back as
``@@progress {json}`` lines on stdout, which the parent relays to its own ``Progress``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections import deque
from dataclasses import fields
from pathlib import Path
from typing import Any

from assistant.errors import BackendError, LadderError
from assistant.progress import Progress
from assistant.settings import Settings

DECODE_PROMPT = (
    "Write a detailed, friendly letter to a new colleague explaining how the team plans its week, "
    "how meetings are run, and where to find help."
)
DECODE_TOKENS = 64
MARK = "@@progress "
# Settings the child never needs and that must not be written to a job file.
SECRET_SETTINGS = ("openai_api_key",)


def settings_flags(settings: Settings, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings that differ from the defaults (flags, env, file) plus the format's overrides,
    as flags a child's ``load_settings`` reads back the same."""
    sources = getattr(settings, "sources", {}) or {}
    flags: dict[str, Any] = {"home": str(settings.home)}
    for item in fields(settings):
        name = item.name
        if name in SECRET_SETTINGS or sources.get(name, "default") == "default":
            continue
        value = getattr(settings, name)
        flags[name] = str(value) if isinstance(value, Path) else value
    flags.update(overrides)
    return flags


class _LineProgress:
    """The child's progress, as lines the parent parses."""

    def _send(self, kind: str, **values: Any) -> None:
        print(MARK + json.dumps({"kind": kind, **values}, default=str), flush=True)

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        self._send("start", stage=stage, total=total, unit=unit)

    def advance(self, amount: float = 1) -> None:
        self._send("advance", amount=amount)

    def note(self, message: str) -> None:
        self._send("note", message=message)


def _rss_now() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """This process's peak resident memory, bytes. ``VmHWM`` of its own address space: the
    ``getrusage`` maximum is not, since Linux carries it over ``fork`` and ``exec``, so a child
    of a large parent would report the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux: the rusage maximum (kilobytes on Linux and BSD, bytes on macOS)
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Run in the child: load, decode, evaluate; returns the numbers (see the module doc)."""
    from assistant.backends.load import load_backend
    from assistant.backends.streaming import stream_to
    from assistant.settings import load_settings
    from assistant.types import GenParams, Message
    from evaluation.plan import EvalPlan
    from evaluation.runner import Runner
    from evaluation.store import RunStore

    settings = load_settings(job["settings"])
    started = time.perf_counter()
    backend = load_backend(job["model_ref"], settings)
    load_s = time.perf_counter() - started
    rss_loaded = _rss_now()

    conversation = [[Message("user", DECODE_PROMPT)]]
    backend.generate(conversation, GenParams(max_new_tokens=4))  # warm-up: lazy init, caches
    # Streamed, so the first piece marks the end of the prompt's prefill: decode tokens/s is the
    # tokens after the first over the time after it (the prefill excluded, as benchmarks/gguf_speed).
    pieces: list[float] = []
    started = time.perf_counter()
    with stream_to(lambda piece: pieces.append(time.perf_counter())):
        completion = backend.generate(conversation, GenParams(max_new_tokens=DECODE_TOKENS))[0]
    ended = time.perf_counter()
    decode_tokens = completion.usage.completion_tokens
    first = pieces[0] if pieces else started
    decode_s = ended - first
    after_first = decode_tokens - 1 if pieces else decode_tokens

    progress.note(f"evaluating on {Path(job['suite']).stem}")
    plan = EvalPlan(
        suite=job["suite"],
        strategies=[dict(job["strategy"])],
        model=job["model_ref"],
        judge=job.get("judge"),
        no_judge=bool(job.get("no_judge")),
        limit=job.get("limit"),
        latency_sample=job.get("latency_sample", 0),
        # Measured afresh: answers from the cache would carry another run's compute time.
        use_cache=False,
        resume=False,
    )
    with RunStore(settings.db_path) as store:
        run = Runner(settings, store, progress, backend=backend).run(plan)
    cost = run.strategies[0].cost
    compute_s = cost.compute_s_mean if cost is not None else None
    return {
        "load_s": load_s,
        "rss_after_load_bytes": rss_loaded,
        "decode_tokens": decode_tokens,
        "first_token_s": first - started,
        "decode_s": decode_s,
        "decode_tokens_per_s": after_first / decode_s if decode_s > 0 and after_first > 0 else None,
        "run_id": run.run_id,
        "throughput_qps": 1.0 / compute_s if compute_s else None,
        "peak_rss_bytes": peak_rss(),
    }


def measure_in_child(job: dict[str, Any], scratch: Path, progress: Progress) -> dict[str, Any]:
    """Run ``measure`` in a fresh interpreter; relay its progress; one-line error if it fails."""
    scratch.mkdir(parents=True, exist_ok=True)
    job_file, result_file = scratch / "job.json", scratch / "result.json"
    job_file.write_text(json.dumps(job, default=str), encoding="utf-8")
    command = [sys.executable, "-m", "evaluation.deploy.measure", str(job_file), str(result_file)]
    tail: deque[str] = deque(maxlen=20)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=os.getcwd()
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(MARK):
                _relay(json.loads(line[len(MARK) :]), progress)
            elif line.strip():
                tail.append(line.rstrip())
        code = child.wait()
    if code != 0 or not result_file.is_file():
        last = next((t for t in reversed(tail) if t.strip()), f"exit code {code}")
        raise BackendError(
            f"measuring {job['model_ref']} failed: {last.strip()}",
            hint="the lines before it: " + " | ".join(list(tail)[-5:]),
        )
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    if "error" in result:  # the child's one-line error, with its exit code
        error = LadderError(f"measuring {job['model_ref']}: {result['error']}", hint=result.get("hint"))
        error.exit_code = int(result.get("exit_code", BackendError.exit_code))
        raise error
    return result


def _relay(event: dict[str, Any], progress: Progress) -> None:
    kind = event.get("kind")
    if kind == "start":
        progress.start(str(event["stage"]), event.get("total"), str(event.get("unit") or "items"))
    elif kind == "advance":
        progress.advance(float(event.get("amount") or 1))
    elif kind == "note":
        progress.note(str(event["message"]))


def main(argv: list[str]) -> int:
    import assistant.offline  # noqa: F401  (privacy env before anything heavy)

    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        result = measure(job, _LineProgress())
    except LadderError as exc:  # the user's to fix: one line back to the parent
        result = {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One process against two: the same LoRA SFT run, the loss curves side by side.

    .venv/bin/python benchmarks/distributed.py [--model smollm2-135m] [--steps 20] [--batch-size 8]
        [--processes 2] [--threads 2]

Both runs train the same pack on the same examples with the same settings and the same global
batch (``--batch-size`` examples an optimizer step); the multi-process run is launched the way
``ladder finetune train --processes N`` launches it (``finetune.train.distributed.launch``:
N local processes, gloo on CPU), each process with ``threads / N`` threads. Dropout is 0, so
the two runs differ only by the order of floating-point sums (which examples a process
computes, and the all-reduce): the table prints both curves, their largest difference, and
each run's training time. Timings here come from a machine shared with other work: read the
loss columns, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import assistant  # noqa: E402, F401  (offline env first)

DEFAULT_DATA = ROOT / "datasets" / "sft" / "support_tickets.jsonl"
VAL = 32


def write_data(source: Path, folder: Path) -> Path:
    """A prepared folder of chat records (an Alpaca file converted): the first ``VAL``
    conversations for validation, the rest for training."""
    records = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if "messages" not in record:  # Alpaca: instruction, a blank line, the input
            prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
            reply = {"role": "assistant", "content": record["output"]}
            record = {"messages": [{"role": "user", "content": prompt}, reply]}
        records.append(json.dumps({"messages": record["messages"]}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "val.jsonl").write_text("\n".join(records[:VAL]) + "\n", encoding="utf-8")
    (folder / "train.jsonl").write_text("\n".join(records[VAL:]) + "\n", encoding="utf-8")
    return folder


def worker(args: argparse.Namespace) -> None:
    """One process of a run (``RANK``/``WORLD_SIZE`` from the launcher, or alone)."""
    from assistant.settings import load_settings
    from finetune.train.config import TrainConfig
    from finetune.train.run import TrainRequest, train

    settings = load_settings({"home": args.home, "threads": args.threads, "dtype": "float32"})
    config = TrainConfig(
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        dropout=0.0,
        eval_every=args.eval_every,
        checkpoint_every=0,
        min_examples=1,
        max_seq_len=512,
        seed=0,
    )
    result = train(TrainRequest(args.base, Path(args.data), args.worker, config), settings)
    if result.manifest:
        print("RESULT " + json.dumps(result.manifest["results"]))


def series(home: Path, adapter: str, metric: str) -> list[tuple[int, float]]:
    from finetune.store import TrainingStore

    with TrainingStore(home / "ladder.db") as store:
        run = next(r for r in store.list_runs() if r.adapter == adapter)
        return store.series(run.run_id, metric)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="In all: shared among the processes.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from assistant.settings import load_settings
    from finetune.adapters import resolve_base
    from finetune.train import distributed

    _ref, base = resolve_base(args.model, load_settings())
    with tempfile.TemporaryDirectory() as tmp:
        home, data = Path(tmp) / "home", write_data(Path(args.data), Path(tmp) / "data")
        common = [
            sys.executable, __file__, f"--steps={args.steps}", f"--batch-size={args.batch_size}",
            f"--lr={args.lr}", f"--eval-every={args.eval_every}", f"--threads={args.threads}",
            f"--home={home}", f"--base={base}", f"--data={data}",
        ]  # fmt: skip
        seconds: dict[str, float] = {}
        for name, processes in (("one", 1), ("many", args.processes)):
            print(f"{name}: {processes} process(es) · {uptime()}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            if processes == 1:
                code = subprocess.run([*common, f"--worker={name}"], cwd=ROOT).returncode
            else:
                command = [*common, f"--worker={name}"]
                code = distributed.launch(command, processes, threads=max(1, args.threads // processes))
            if code != 0:
                raise SystemExit(f"the {processes}-process run failed ({code})")
            seconds[name] = time.perf_counter() - started
        curves = {
            (name, metric): dict(series(home, name, metric))
            for name in ("one", "many")
            for metric in ("train_loss", "val_loss", "grad_norm")
        }
    print(f"load after: {uptime()}\n")
    print(
        f"{args.model}, {args.steps} steps of global batch {args.batch_size}, fp32, dropout 0; "
        f"1 process ({args.threads} threads) vs {args.processes} processes (gloo, "
        f"{max(1, args.threads // args.processes)} thread(s) each); wall time with loading: "
        f"{seconds['one']:.0f} s vs {seconds['many']:.0f} s\n"
    )
    print(
        f"| step | train loss, 1 | train loss, {args.processes} | val loss, 1 | val loss, {args.processes} "
        f"| grad norm, 1 | grad norm, {args.processes} |"
    )
    print("|---|---|---|---|---|---|---|")
    steps = sorted(curves[("one", "train_loss")] | curves[("one", "val_loss")])
    for step in steps:
        cells = []
        for metric in ("train_loss", "val_loss", "grad_norm"):
            for name in ("one", "many"):
                value = curves[(name, metric)].get(step)
                cells.append(f"{value:.6f}" if value is not None else "")
        print(f"| {step} | " + " | ".join(cells) + " |")
    for metric in ("train_loss", "val_loss", "grad_norm"):
        one, many = curves[("one", metric)], curves[("many", metric)]
        diff = max(abs(one[s] - many[s]) for s in one)
        print(f"\nmax |{metric} difference|: {diff:.2e} over {len(one)} points", end="")
    print()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()

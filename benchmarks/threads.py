"""One short answer's time by thread count and OpenMP wait policy, on idle and on loaded cores.

    .venv/bin/python benchmarks/threads.py [--model smollm2-135m] [--busy 0,2] [--repeats 2]

Each cell is a fresh subprocess (the wait policy is read once, when torch loads OpenMP)
that loads the pack, warms up, then times ``--repeats`` greedy answers of 32 tokens. "busy"
is how many pure-Python busy loops run beside it, each keeping a core occupied, as another
job on a shared machine would. The baseline is the same machine, same run: threads=1.

Why: an OpenMP thread that finishes its share spins for the next parallel region (libgomp's
default: 300,000 turns, then it sleeps); when another process holds the core its sibling
needs, both wait. Sleeping at once (PASSIVE) protects a loaded machine but costs an idle one
the wake-up on every region. Ladder sets PASSIVE with a short spin (``GOMP_SPINCOUNT=30000``)
before any heavy import (``assistant.offline``), unless the user set either variable.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELL = """
import sys, time
import assistant
from assistant.backends.load import load_backend
from assistant.settings import load_settings
from assistant.types import GenParams, user
backend = load_backend(sys.argv[2], load_settings({"threads": int(sys.argv[1]), "dtype": "float32"}))
backend.generate([user("hi")], GenParams(max_new_tokens=4))
start = time.perf_counter()
for _ in range(int(sys.argv[3])):
    backend.generate([user("What is the capital of France?")], GenParams(max_new_tokens=32))
print((time.perf_counter() - start) / int(sys.argv[3]))
"""


# name -> the environment of the wait policy (libgomp, which the Linux torch wheels use)
POLICIES = {
    "default": {"OMP_WAIT_POLICY": ""},  # libgomp's own: spin 300,000 times, then sleep
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},  # sleep at once
    "Ladder": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "30000"},  # spin briefly, then sleep
}


def cell(threads: int, policy: str, model: str, repeats: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(POLICIES[policy])
    out = subprocess.run([sys.executable, "-c", CELL, str(threads), model, str(repeats)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--busy", default="0,2,4", help="busy loops beside the run, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.model}, one greedy answer of 32 tokens; baseline: 1 thread, Ladder's policy, same load")
    print(f"{'busy':>4} {'threads':>7} {'policy':>8} {'s/answer':>9} {'vs 1 thread':>11}")
    for busy in (int(b) for b in args.busy.split(",")):
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            base = cell(1, "Ladder", args.model, args.repeats)
            print(f"{busy:>4} {1:>7} {'Ladder':>8} {base:>9.2f} {1.0:>10.2f}x")
            for policy in POLICIES:
                seconds = cell(2, policy, args.model, args.repeats)
                print(f"{busy:>4} {2:>7} {policy:>8} {seconds:>9.2f} {seconds / base:>10.2f}x", flush=True)
        finally:
            for loop in loops:
                loop.kill()


if __name__ == "__main__":
    main()

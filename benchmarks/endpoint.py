"""The demo exam scored through an endpoint (``ladder serve`` over the same pack) against the
local backend: the predictions must be the same; the endpoint's wall time at
``max_concurrency`` 1 and 4.

    .venv/bin/python benchmarks/endpoint.py [--model qwen2.5-coder-0.5b] [--rounds 2] [--threads 2]
        [--dtype float32]

The local backend scores the suite's raw prompts as ``ladder eval`` does (``score_choices``
with ``chat_template=False``: one pass per prompt, the shared 5-shot exemplars of a subject
run once). Through the endpoint every item is one ``/v1/completions`` request with
prompt + option for each option, ``echo`` and ``logprobs`` (lm-evaluation-harness's
local-completions way, what vLLM serves); ``ladder serve`` runs in its own process on
127.0.0.1 with the same pack and thread count, and computes each request's shared prompt
once. The concurrency runs are interleaved (1, 4, 1, 4, ...) after a warm-up request that
loads the model, and each row is the median over ``--rounds``. Print ``uptime`` next to it.

Both sides run in ``--dtype`` (float32 by default): in bf16 the local backend re-scores close
calls with a float32 copy (``score_recheck_margin``) and a server's echo logprobs are plain
bf16, so a close call can differ.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import assistant  # noqa: F401  (offline env first)
from assistant.backends.hf.local import HFLocalBackend
from assistant.backends.openai_compat import OpenAICompatBackend
from assistant.models.refs import parse_model_ref
from assistant.settings import load_settings
from evaluation.suites.readers import LETTERS
from evaluation.suites.spec import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "datasets" / "suites" / "demo_exam.yaml"
KEY = "bench-endpoint-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    import openai

    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=5)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ladder serve exited with code {process.returncode}")
        try:
            client.models.list()
            return
        except openai.OpenAIError:
            time.sleep(0.5)
    raise SystemExit(f"ladder serve did not answer within {timeout_s:g} s")


def best(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N items")
    parser.add_argument(
        "--dtype", default="float32", help="both sides (bf16 logprobs differ by ~1e-2 from float32)"
    )
    args = parser.parse_args()

    # The server process reads it from the environment, like any setting.
    os.environ["LADDER_DTYPE"] = args.dtype
    settings = load_settings({"threads": args.threads})
    suite = load_suite(SUITE)
    items = suite.items[: args.limit] if args.limit else suite.items
    prompts = [item.prompt for item in items]
    answers = [item.reference_letter for item in items]
    choices = list(LETTERS[:4])

    folder = parse_model_ref(args.model, settings).local_folder(settings)
    local = HFLocalBackend(folder, settings)
    local.score_choices(prompts[:1], choices, chat_template=False)  # warm-up
    start = time.perf_counter()
    here = local.score_choices(prompts, choices, chat_template=False)
    local_s = time.perf_counter() - start
    del local

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "LADDER_SERVE_API_KEY": KEY}
    server = subprocess.Popen(
        [sys.executable, "-m", "ui.cli.app", "serve", "--model", args.model, "--port", str(port),
         "--threads", str(args.threads)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_up(url, server)
        times: dict[int, list[float]] = {1: [], 4: []}
        remote: dict[int, list[list[float]]] = {}
        warm = load_settings({"request_timeout_s": 600, "max_retries": 0})
        OpenAICompatBackend(args.model, url, api_key=KEY, settings=warm).score_choices(
            prompts[:1], choices, chat_template=False
        )  # loads the model in the server
        for _round in range(args.rounds):
            for concurrency in (1, 4):
                endpoint_settings = load_settings(
                    {"max_concurrency": concurrency, "request_timeout_s": 600, "max_retries": 0}
                )
                endpoint = OpenAICompatBackend(args.model, url, api_key=KEY, settings=endpoint_settings)
                start = time.perf_counter()
                remote[concurrency] = endpoint.score_choices(prompts, choices, chat_template=False)
                times[concurrency].append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=30)

    local_pred = [best(row) for row in here]
    print(f"demo exam ({len(items)} items, {args.model}, {args.threads} threads, dtype {settings.dtype})\n")
    print("| path | wall s (median) | predictions equal to local | accuracy | max abs logprob diff |")
    print("|---|---:|---:|---:|---:|")
    accuracy = sum(LETTERS[p] == a for p, a in zip(local_pred, answers, strict=True)) / len(items)
    print(f"| local backend | {local_s:.1f} | {len(items)}/{len(items)} | {accuracy:.3f} | 0 |")
    for concurrency in (1, 4):
        rows = remote[concurrency]
        pred = [best(row) for row in rows]
        same = sum(p == q for p, q in zip(pred, local_pred, strict=True))
        acc = sum(LETTERS[p] == a for p, a in zip(pred, answers, strict=True)) / len(items)
        diff = max(abs(x - y) for a, b in zip(rows, here, strict=True) for x, y in zip(a, b, strict=True))
        wall = statistics.median(times[concurrency])
        print(
            f"| ladder serve, max_concurrency {concurrency} | {wall:.1f} | {same}/{len(items)} | {acc:.3f} | "
            f"{diff:.2e} |"
        )
    print(f"\nendpoint runs (s): {times}")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()

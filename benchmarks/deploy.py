"""Issue 19's targets for ``ladder deploy``, side by side in one run, on the demo pack and on the
demo's fine-tuned routing adapter.

    .venv/bin/python benchmarks/deploy.py [--decision demo-ticket-routing] [--rounds 3] [--skip-deploy]

1. **Decode speed, demo pack** (``qwen2.5-coder-0.5b``, no adapter): one greedy stream of
   ``--tokens`` new tokens from transformers float32 and from llama.cpp Q4_K_M, in rounds that
   interleave the two (the machine is shared: the load average is printed before and after).
   Tokens/s after the first token (prefill excluded), the median of the rounds, measured the way
   ``benchmarks/gguf_speed.py`` does (its streams are reused here). The memory-bandwidth limit is
   measured in the same run (a large numpy copy, best of three, before and after the streams):
   limit tok/s = bandwidth / bytes of weights read per token (the file's size). Targets: Q4_K_M
   >= 3x float32, and >= 50 % of its own bandwidth limit.
2. **``ladder deploy`` on the routing decision** (the CLI, as a user runs it, every format):
   its wall time (target < 15 min; the llama.cpp engine build is excluded: it is ``make
   engines``, once), and the table it writes. Target: the merged adapter in Q4_K_M keeps
   exact_match within the decision's CI of the float32 adapter on the test split (the
   decision's own test-split estimate of its recommended rung), or the benchmark says by how much
   it does not.

Without the engine (``make engines``), part 1 measures float32 against bfloat16 only and part 2
deploys the transformers formats; the GGUF targets are then reported as not measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script, this folder comes first on sys.path, where benchmarks/finetune.py would shadow
# the finetune package (and gguf_speed.py's `from finetune.deploy import gguf` with it).
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path.pop(0)

import assistant  # noqa: E402, F401  (offline env first)
from assistant.models.pull import ensure_pack  # noqa: E402
from assistant.settings import load_settings  # noqa: E402


def _speed() -> Any:
    """benchmarks/gguf_speed.py: the decode streams and the bandwidth probe, one implementation."""
    spec = importlib.util.spec_from_file_location("gguf_speed", HERE / "gguf_speed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decode_part(model: str, tokens: int, rounds: int, threads: int, engine: bool) -> dict[str, Any]:
    speed = _speed()
    settings = load_settings()
    pack_dir = ensure_pack(model, settings)
    bandwidth = [speed.copy_bandwidth_gbs()]
    weights = {"hf-float32": sum(p.stat().st_size for p in pack_dir.glob("*.safetensors"))}
    runners = {"hf-float32": speed.hf_stream(pack_dir, "float32", threads)}
    if engine:
        files = speed.build_ggufs(pack_dir, settings.home / "cache" / "bench-gguf" / model)
        path = files["q4_k_m"][0]
        weights["gguf-q4_k_m"] = path.stat().st_size
        runners["gguf-q4_k_m"] = speed.gguf_stream(path, threads)
    else:
        weights["hf-bfloat16"] = weights["hf-float32"] // 2
        runners["hf-bfloat16"] = speed.hf_stream(pack_dir, "bfloat16", threads)
    for run in runners.values():
        run(4)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            rates[name].append(speed.decode_rate(run(tokens)))
    bandwidth.append(speed.copy_bandwidth_gbs())
    best = max(bandwidth)
    rows = {}
    for name, values in rates.items():
        median = statistics.median(values)
        limit = best * 1e9 / weights[name]
        rows[name] = {"tok_s": median, "all": values, "weights": weights[name], "limit": limit}
    return {"bandwidth_gbs": bandwidth, "rows": rows}


def deploy_part(decision: str, name: str, engine: bool) -> dict[str, Any]:
    ladder = Path(sys.executable).with_name("ladder")
    command = [str(ladder), "deploy", decision, "--name", name]
    if not engine:
        command += ["--formats", "transformers-bf16,transformers-fp32"]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    code = subprocess.run(command, check=False).returncode
    wall = time.perf_counter() - started
    settings = load_settings()
    manifest = json.loads((settings.home / "deployments" / name / "manifest.json").read_text("utf-8"))
    return {"exit": code, "wall_s": wall, "manifest": manifest}


def _decision_ci(decision: str) -> tuple[str, float | None, float | None, float | None]:
    """The decision's test-split estimate of its recommended rung on its first target."""
    from evaluation.decide.store import DecisionStore
    from evaluation.deploy.source import find_decision

    with DecisionStore(load_settings().db_path) as store:
        found = find_decision(decision, store)
    metric = found.targets[0].split()[0]
    rung = found.rung(found.recommended or "")
    est = rung.test.metrics.get(metric) if rung.test else None
    if est is None:
        return metric, None, None, None
    return metric, est.mean, est.low, est.high


def report_deploy(decision: str, deployed: dict[str, Any]) -> None:
    """Part 2's table and targets, from the deployment's manifest."""
    manifest = deployed["manifest"]
    metric, mean, low, high = _decision_ci(decision)
    print(f"\nwall time {deployed['wall_s'] / 60:.1f} min (exit {deployed['exit']}) -> "
          f"{'PASS' if deployed['wall_s'] < 15 * 60 else 'FAIL'} (< 15 min)")  # fmt: skip
    print(f"decision's test estimate of {manifest['rung']} ({manifest['source_model']}): "
          f"{metric} {mean} [{low}, {high}]\n")  # fmt: skip
    print(
        f"| format | {metric} [CI] | decode tok/s | peak RSS MB | load s | q/s | size MB | build s | meets |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in manifest["formats"]:
        if row["state"] != "measured":
            print(f"| {row['format']} | skipped: {row['note']} |")
            continue
        est = row["test"]["metrics"][metric]
        print(
            f"| {row['format']} | {est['mean']:.3f} [{est['low']:.3f}, {est['high']:.3f}] "
            f"| {row['decode_tokens_per_s']:.1f} | {row['peak_rss_bytes'] / 1e6:.0f} | {row['load_s']:.1f} "
            f"| {row['throughput_qps']:.2f} | {row['size_bytes'] / 1e6:.0f} | {row['build_s']:.0f} "
            f"| {'yes' if row['meets'] else 'no'} |"
        )
    chosen = manifest.get("chosen")
    print(
        f"\nchosen: {chosen}; notes: " + "; ".join(n for r in manifest["formats"] for n in r.get("notes", []))
    )
    q4_row = next((r for r in manifest["formats"] if r["format"] == "gguf-q4_k_m"), None)
    if q4_row and q4_row["state"] == "measured" and low is not None and high is not None:
        q4_mean = q4_row["test"]["metrics"][metric]["mean"]
        inside = low <= q4_mean <= high
        gap = 0.0 if inside else (low - q4_mean if q4_mean < low else q4_mean - high)
        print(f"target Q4_K_M {metric} {q4_mean:.3f} within the decision's CI [{low:.3f}, {high:.3f}]: "
              + ("PASS" if inside else f"FAIL (outside by {gap:.3f})"))  # fmt: skip
        fp32 = next((r for r in manifest["formats"] if r["format"] == "transformers-fp32"), None)
        if fp32 and fp32["state"] == "measured":
            print(f"merged adapter, decode Q4_K_M / fp32: "
                  f"{q4_row['decode_tokens_per_s'] / fp32['decode_tokens_per_s']:.2f}x")  # fmt: skip
    else:
        print("target Q4_K_M within the decision's CI: not measured (no Q4_K_M row)")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--decision", default="demo-ticket-routing")
    parser.add_argument("--name", default="demo-ticket-routing", help="the deployment's name")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-deploy", action="store_true", help="part 1 only")
    args = parser.parse_args()

    from assistant.backends.llama_cpp import engine_missing

    hint = engine_missing()
    engine = hint is None
    print(f"load average before: {_load()}  ({os.cpu_count()} cores, {args.threads} threads)")
    if not engine:
        print(f"llama.cpp engine missing ({hint}): the GGUF targets are not measured")

    speed = decode_part(args.model, args.tokens, args.rounds, args.threads, engine)
    print(f"load average after part 1: {_load()}")
    bandwidths = ", ".join(f"{b:.1f}" for b in speed["bandwidth_gbs"])
    print(f"\n## 1. Decode, {args.model} ({args.tokens} new tokens, median of {args.rounds} interleaved)")
    print(f"copy bandwidth GB/s (before, after): {bandwidths}; the limit uses the best\n")
    print("| format | decode tok/s | rounds | weights MB | bandwidth limit tok/s | % of limit | x fp32 |")
    print("|---|---|---|---|---|---|---|")
    base = speed["rows"]["hf-float32"]["tok_s"]
    for name, row in speed["rows"].items():
        rounds = " ".join(f"{v:.1f}" for v in row["all"])
        print(
            f"| {name} | {row['tok_s']:.1f} | {rounds} | {row['weights'] / 1e6:.0f} | {row['limit']:.1f} "
            f"| {100 * row['tok_s'] / row['limit']:.0f} % | {row['tok_s'] / base:.2f} |"
        )
    q4 = speed["rows"].get("gguf-q4_k_m")
    if q4:
        ratio, share = q4["tok_s"] / base, q4["tok_s"] / q4["limit"]
        print(f"\ntarget Q4_K_M >= 3x fp32: {ratio:.2f}x -> {'PASS' if ratio >= 3 else 'FAIL'}")
        print(f"target Q4_K_M >= 50 % of its bandwidth limit: {100 * share:.0f} % -> "
              f"{'PASS' if share >= 0.5 else 'FAIL'}")  # fmt: skip
    if args.skip_deploy:
        return

    print(f"\n## 2. ladder deploy {args.decision} (every format; load average {_load()})", flush=True)
    deployed = deploy_part(args.decision, args.name, engine)
    print(f"load average after part 2: {_load()}")
    report_deploy(args.decision, deployed)


if __name__ == "__main__":
    main()

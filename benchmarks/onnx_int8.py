"""ONNX Runtime int8 (dynamic quantization) against transformers bf16 and fp32 (issue 19).

Exports each pack's causal LM to ONNX *with a KV cache* (one graph: ``input_ids``,
``attention_mask``, ``position_ids`` and ``past.<i>.key/value`` in; last-position ``logits`` and
``present.<i>.key/value`` out, so decode is incremental like transformers' ``generate``), quantizes
it with ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per-tensor and per-channel),
then measures every format side by side on the same machine in the same run:

- speed (in a fresh subprocess per measurement, formats interleaved, ``--repeats`` rounds): load
  time, prefill tokens/s on a 300-token prompt, single-stream greedy decode tokens/s (fixed
  prompt, 64 new tokens), peak RSS of the process;
- size on disk;
- quality against transformers fp32: greedy agreement over 20 prompts (the demo QA suite and 7
  support tickets; identical outputs and the first differing token) and the argmax of the option
  letters' log-probs on the demo exam (datasets/suites/demo_exam: 24 val questions, ``--exam-shots``
  exemplars each, plus 15 dev questions 0-shot).

optimum-onnx (0.1.0, the ORTModelForCausalLM exporter) pins ``transformers<4.58`` and cannot
run next to transformers 5, so the export is ``torch.onnx.export`` (dynamo) of a small wrapper:
the deploy format's own ``finetune.deploy.onnx.export_with_cache`` and ``quantize_int8``.

Setup (never in the project's .venv): a throwaway venv that sees .venv's packages and adds the
ONNX exporter's three packages::

    python3 -m venv /tmp/onnxvenv
    .venv/bin/python -c "import site; print(site.getsitepackages()[0])" \\
        > "$(/tmp/onnxvenv/bin/python -c 'import site; print(site.getsitepackages()[0])')/main.pth"
    /tmp/onnxvenv/bin/pip install --no-deps onnx==1.23.2 onnx-ir==1.1.0 onnxscript==0.7.2 ml_dtypes

Run (from the repo root; exports are cached under --work)::

    /tmp/onnxvenv/bin/python benchmarks/onnx_int8.py [--packs smollm2-135m,qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MODELS = Path.home() / ".ladder" / "models"
REPO = Path(__file__).resolve().parent.parent
FORMATS = ("hf-fp32", "hf-bf16", "ort-fp32", "ort-int8", "ort-int8-pc")
NEW_TOKENS = 64
PREFILL_TOKENS = 300

DECODE_PROMPT = "Write a Python function that checks whether a string is a palindrome, and explain it."
SUITES = REPO / "datasets" / "suites"
EXAM = SUITES / "demo_exam"


# ---- the two engines behind one interface -------------------------------------------------------
class LM(Protocol):
    eos: set[int]

    def prefill(self, ids: list[int]) -> np.ndarray:
        """Run a fresh prompt; return the last position's logits (vocab,)."""
        ...

    def step(self, token: int) -> np.ndarray:
        """Feed one token after the current state; return its logits."""
        ...


def greedy(lm: LM, ids: list[int], n: int) -> list[int]:
    out: list[int] = []
    logits = lm.prefill(ids)
    for _ in range(n):
        token = int(np.argmax(logits))
        out.append(token)
        if token in lm.eos or len(out) == n:
            break
        logits = lm.step(token)
    return out


class HFLM:
    def __init__(self, pack: Path, dtype: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(pack, dtype=getattr(torch, dtype))
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.past: Any = None
        self.length = 0

    def _run(self, ids: list[int]) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([ids])
            mask = torch.ones(1, self.length + len(ids), dtype=torch.long)
            out = self.model(
                input_ids=x, attention_mask=mask, past_key_values=self.past, use_cache=True, logits_to_keep=1
            )
        self.past = out.past_key_values
        self.length += len(ids)
        return out.logits[0, -1].float().numpy()

    def prefill(self, ids: list[int]) -> np.ndarray:
        self.past, self.length = None, 0
        return self._run(ids)

    def step(self, token: int) -> np.ndarray:
        return self._run([token])


class OrtLM:
    def __init__(self, model: Path, pack: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        config = json.loads((pack / "config.json").read_text())
        gen = json.loads((pack / "generation_config.json").read_text())
        eos = gen.get("eos_token_id", config.get("eos_token_id"))
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.past_names = [i.name for i in self.session.get_inputs() if i.name.startswith("past.")]
        self.present_names = [o.name for o in self.session.get_outputs() if o.name.startswith("present.")]
        heads = config["num_key_value_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        self.empty = np.zeros((1, heads, 0, head_dim), dtype=np.float32)
        self.past: list[np.ndarray] = []
        self.length = 0

    def _run(self, ids: list[int]) -> np.ndarray:
        n = len(ids)
        feed: dict[str, np.ndarray] = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, self.length + n), dtype=np.int64),
            "position_ids": np.arange(self.length, self.length + n, dtype=np.int64)[None],
        }
        feed.update(zip(self.past_names, self.past or [self.empty] * len(self.past_names), strict=True))
        logits, *present = self.session.run(["logits", *self.present_names], feed)
        self.past = present
        self.length += n
        return logits[0, -1]

    def prefill(self, ids: list[int]) -> np.ndarray:
        self.past, self.length = [], 0
        return self._run(ids)

    def step(self, token: int) -> np.ndarray:
        return self._run([token])


# ---- export and quantization (the deploy format's own code) ------------------------------------
def _repo_on_path() -> None:
    if str(REPO) not in sys.path:  # the throwaway venv does not run .venv's editable-install hook
        sys.path.insert(0, str(REPO))


def export(pack: Path, out: Path) -> Path:
    """The pack as one fp32 ONNX graph with a KV cache (external data next to it)."""
    target = out / "model.onnx"
    if not target.exists():
        _repo_on_path()
        from finetune.deploy.onnx import export_with_cache

        export_with_cache(pack, target)
    return target


def quantize(fp32: Path, out: Path, per_channel: bool) -> Path:
    target = out / "model.onnx"
    if not target.exists():
        _repo_on_path()
        from finetune.deploy.onnx import quantize_int8

        out.mkdir(parents=True, exist_ok=True)
        quantize_int8(fp32, target, per_channel)
    return target


def model_path(work: Path, pack_name: str, fmt: str) -> Path:
    return work / pack_name / fmt / "model.onnx"


def size_mb(fmt: str, pack: Path, work: Path) -> float:
    folder = pack if fmt.startswith("hf-") else model_path(work, pack.name, fmt).parent
    total = sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and not f.name.endswith(".json"))
    if fmt == "hf-bf16":
        total //= 2  # the pack is stored in fp32; a bf16 copy is half of it
    return total / 1e6


def load(fmt: str, pack: Path, work: Path) -> LM:
    threads = int(os.environ.get("ONNX_BENCH_THREADS", "2"))
    if fmt.startswith("hf-"):
        import torch

        torch.set_num_threads(threads)
        return HFLM(pack, "float32" if fmt == "hf-fp32" else "bfloat16")
    return OrtLM(model_path(work, pack.name, fmt), pack, threads)


def agreement_prompts() -> list[str]:
    """20 of the project's own questions: the demo QA suite's 13 and 7 support tickets."""
    rows = [json.loads(line) for line in (SUITES / "demo_qa.jsonl").read_text().splitlines() if line]
    tickets = (SUITES / "support_tickets_test.jsonl").read_text().splitlines()[:7]
    return [row["user_input"] for row in rows + [json.loads(line) for line in tickets]]


def tokenize(pack: Path, target: Path, shots: int) -> None:
    """Every token id the children feed, written once by the parent: the children then need no
    tokenizer (transformers imports torch, which would add ~0.4 GB to the ONNX formats' RSS)."""
    from transformers import AutoTokenizer

    tok: Any = AutoTokenizer.from_pretrained(pack)

    def chat(text: str) -> list[int]:
        if not tok.chat_template:
            return list(tok(text)["input_ids"])
        ids = tok.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
        )
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)

    long_prompt = list(tok(" ".join(agreement_prompts() * 5))["input_ids"])
    assert len(long_prompt) >= PREFILL_TOKENS, len(long_prompt)
    inputs = {
        "decode": chat(DECODE_PROMPT),
        "prefill": long_prompt[:PREFILL_TOKENS],
        "agreement": [chat(p) for p in agreement_prompts()],
        "exam": [list(tok(prompt)["input_ids"]) for prompt, _ in exam_prompts(shots)],
        "letters": [tok(c, add_special_tokens=False)["input_ids"][0] for c in "ABCD"],
    }
    partial = target.with_suffix(f".{os.getpid()}.tmp")  # children may be reading the old one
    partial.write_text(json.dumps(inputs))
    partial.replace(target)


def inputs(work: Path, pack: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / pack.name / "inputs.json").read_text())
    return data


# ---- speed: one fresh process per measurement --------------------------------------------------
def speed_child(fmt: str, pack: Path, work: Path) -> dict[str, float]:
    feed = inputs(work, pack)
    decode_prompt, long_prompt = feed["decode"], feed["prefill"]
    t0 = time.perf_counter()
    lm = load(fmt, pack, work)
    lm.prefill(decode_prompt[:8])  # first-call warm-up (graph setup) is part of loading
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lm.prefill(long_prompt)
    prefill_s = time.perf_counter() - t0
    logits = lm.prefill(decode_prompt)
    t0, c0 = time.perf_counter(), time.process_time()
    steps = 0
    token = int(np.argmax(logits))
    for _ in range(NEW_TOKENS - 1):  # 64 new tokens: the first comes from the prefill
        token = int(np.argmax(lm.step(token)))
        steps += 1
    decode_s, decode_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "load_s": load_s,
        "prefill_tps": PREFILL_TOKENS / prefill_s,
        "decode_tps": steps / decode_s,
        # CPU-seconds per token (all threads): robust to a busy machine with one thread; with
        # more, spinning worker threads count too
        "decode_cpu_ms": 1000 * decode_cpu_s / steps,
        "rss_mb": rss,
    }


def speed(pack: Path, work: Path, formats: list[str], repeats: int) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {f: [] for f in formats}
    for r in range(repeats):
        order = formats if r % 2 == 0 else list(reversed(formats))  # interleaved, alternating order
        for fmt in order:
            cmd = [sys.executable, __file__, "--child", fmt, "--packs", pack.name, "--work", str(work)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[fmt].append(result)
            print(f"  [{pack.name}] round {r + 1} {fmt}: {result}", file=sys.stderr, flush=True)
    return runs


# ---- quality against fp32 ----------------------------------------------------------------------
@dataclass
class Quality:
    identical: int
    prompts: int
    first_diff: list[int]  # per prompt whose output differs: the index of its first differing token
    mcq_agree: int
    mcq_correct: int
    mcq_total: int


def exam_prompts(shots: int = 5) -> list[tuple[str, str]]:
    _repo_on_path()
    from evaluation.suites.exam import ExamTree

    items = ExamTree(roots=(EXAM,), layout="ceval", split="val", k_shot=shots).items()
    items += ExamTree(roots=(EXAM,), layout="ceval", split="dev", k_shot=0).items()
    return [(item.prompt, str(item.reference_letter)) for item in items]


def quality_child(fmt: str, pack: Path, work: Path, new_tokens: int) -> dict[str, Any]:
    feed = inputs(work, pack)
    lm = load(fmt, pack, work)
    outs = [greedy(lm, ids, new_tokens) for ids in feed["agreement"]]
    picks = ["ABCD"[int(np.argmax(lm.prefill(ids)[feed["letters"]]))] for ids in feed["exam"]]
    return {"outs": outs, "picks": picks}


def compare(ref: dict[str, Any], got: dict[str, Any], gold: list[str]) -> Quality:
    pairs = list(zip(ref["outs"], got["outs"], strict=True))
    first = [
        next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        for a, b in pairs
        if a != b
    ]
    agree = sum(x == y for x, y in zip(ref["picks"], got["picks"], strict=True))
    correct = sum(x == y for x, y in zip(got["picks"], gold, strict=True))
    return Quality(len(pairs) - len(first), len(pairs), first, agree, correct, len(gold))


def quality(pack: Path, work: Path, formats: list[str], new_tokens: int) -> dict[str, dict[str, Any]]:
    """Each format's answers, saved as they come; formats already saved are not run again."""
    saved = work / f"{pack.name}.quality.json"
    results: dict[str, dict[str, Any]] = json.loads(saved.read_text()) if saved.exists() else {}
    for fmt in formats:
        if fmt in results:
            continue
        cmd = [sys.executable, __file__, "--child", fmt, "--quality", str(new_tokens)]
        cmd += ["--packs", pack.name, "--work", str(work)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[fmt] = json.loads(done.stdout.strip().splitlines()[-1])
        saved.write_text(json.dumps(results))
        print(f"  [{pack.name}] quality {fmt} done: {uptime()}", file=sys.stderr, flush=True)
    return results


# ---- the table ----------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return float(np.median(values))


def quality_cells(q: Quality | None) -> str:
    if q is None:
        return "- | - | - | -"
    diff = f"{median([float(x) for x in q.first_diff]):.0f}, {min(q.first_diff)}" if q.first_diff else "-"
    n = q.mcq_total
    return f"{q.identical}/{q.prompts} | {diff} | {q.mcq_agree}/{n} | {q.mcq_correct}/{n}"


def speed_cells(rs: list[dict[str, float]], bf16: float | None) -> str:
    if not rs:
        return "- | - | - | - | - | -"
    decode = [r["decode_tps"] for r in rs]
    ratio = f"{median(decode) / bf16:.2f}x" if bf16 else "-"
    cpu = [r["decode_cpu_ms"] for r in rs if "decode_cpu_ms" in r]
    return (
        f"{median([r['load_s'] for r in rs]):.1f} | {median([r['prefill_tps'] for r in rs]):.0f} "
        f"| {median(decode):.1f} ({', '.join(f'{d:.1f}' for d in decode)}) | {ratio} "
        f"| {f'{median(cpu):.0f}' if cpu else '-'} | {max(r['rss_mb'] for r in rs):.0f}"
    )


def table(pack: Path, work: Path, runs: dict[str, list[dict[str, float]]], qual: dict[str, Any]) -> str:
    gold = [g for _, g in exam_prompts()]
    ref = qual.get("hf-fp32")
    bf16_runs = runs.get("hf-bf16")
    bf16 = median([r["decode_tps"] for r in bf16_runs]) if bf16_runs else None
    head = (
        "| format | size MB | load s | prefill tok/s | decode tok/s (runs) | vs bf16 | decode CPU ms/tok "
        "| peak RSS MB "
        "| greedy identical | first differing token (median, min) | MCQ agree fp32 | MCQ correct |"
    )
    lines = [f"### {pack.name}", "", head, "|" + "---|" * 12]
    for fmt in runs:
        q = compare(ref, qual[fmt], gold) if ref and fmt in qual else None
        size = size_mb(fmt, pack, work)
        lines.append(f"| {fmt} | {size:.0f} | {speed_cells(runs[fmt], bf16)} | {quality_cells(q)} |")
    return "\n".join(lines)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def prepare(pack: Path, work: Path) -> None:
    fp32 = model_path(work, pack.name, "ort-fp32")
    t0 = time.perf_counter()
    export(pack, fp32.parent)
    print(f"  [{pack.name}] export {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    for fmt, per_channel in (("ort-int8", False), ("ort-int8-pc", True)):
        t0 = time.perf_counter()
        quantize(fp32, model_path(work, pack.name, fmt).parent, per_channel)
        print(f"  [{pack.name}] quantize {fmt} {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packs", default="smollm2-135m,qwen2.5-coder-0.5b")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--work", default="/tmp/onnx_int8_work", help="where the exports are cached")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quality-formats",
        default="hf-fp32,hf-bf16,ort-int8,ort-int8-pc",
        help="formats compared with hf-fp32 (ort-fp32 matches it to ~1e-4 in the logits)",
    )
    parser.add_argument(
        "--quality-tokens", type=int, default=32, help="greedy tokens per prompt for agreement"
    )
    parser.add_argument("--exam-shots", type=int, default=5, help="exemplars before each val question")
    parser.add_argument("--skip", default="", help="comma list of phases to skip: speed,quality")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quality", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    if args.child:
        pack = MODELS / args.packs
        if args.quality:
            print(json.dumps(quality_child(args.child, pack, work, args.quality)))
        else:
            print(json.dumps(speed_child(args.child, pack, work)))
        return
    formats = args.formats.split(",")
    skip = set(args.skip.split(","))
    print(f"start: {uptime()}  threads={os.environ.get('ONNX_BENCH_THREADS', '2')}")
    for name in args.packs.split(","):
        pack = MODELS / name
        prepare(pack, work)
        tokenize(pack, work / name / "inputs.json", args.exam_shots)
        # Each phase saves its results; a skipped phase reuses the last saved ones (if any).
        qual = phase(work / f"{name}.quality.json", "quality" in skip, "{}")
        if "quality" not in skip:
            qual = quality(pack, work, args.quality_formats.split(","), args.quality_tokens)
        runs = phase(work / f"{name}.speed.json", "speed" in skip, json.dumps({f: [] for f in formats}))
        if "speed" not in skip:
            runs = speed(pack, work, formats, args.repeats)
            (work / f"{name}.speed.json").write_text(json.dumps(runs))
        print(table(pack, work, runs, qual))
        print(f"after {name}: {uptime()}", flush=True)


def phase(saved: Path, skipped: bool, empty: str) -> Any:
    return json.loads(saved.read_text() if skipped and saved.exists() else empty)


if __name__ == "__main__":
    main()

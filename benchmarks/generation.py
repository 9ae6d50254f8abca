"""Generation and exam-scoring throughput of hf_local: one-by-one against batched.

    .venv/bin/python benchmarks/generation.py [--model qwen2.5-coder-0.5b] [--dtypes float32,bfloat16]

16 mixed Chinese/English prompts, greedy, 64 new tokens; then ``score_choices`` on 100
four-option prompts. Every comparison is measured side by side in the same run, and the
table shows ratios against the one-by-one baseline. Target: batched generation >= 3x the
tokens/s of the one-by-one loop.

It also checks ``dtype: auto``: the table ends with what auto picks on this CPU (from its
small matmul probe) and which dtype was faster here for batched generation and for batched
scoring. Run it once more as an AVX2-only machine would to check the other CPU kind::

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        .venv/bin/python benchmarks/generation.py
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import assistant  # noqa: F401  (offline env first)
from assistant.backends.hf.local import HFLocalBackend
from assistant.models.pull import ensure_pack
from assistant.settings import load_settings
from assistant.types import GenParams, user

T = TypeVar("T")

PROMPTS = [
    "用一句话介绍长城。",
    "What is retrieval-augmented generation?",
    "请解释什么是机器学习。",
    "Write a Python function that reverses a string.",
    "北京是哪个国家的首都？",
    "List three uses of a hash map.",
    "什么是二分查找？请简要说明。",
    "Explain the difference between a list and a tuple in Python.",
    "用中文写一句关于春天的诗。",
    "What does HTTP status code 404 mean?",
    "如何在Python中读取一个文件？",
    "Summarize the idea of fine-tuning a language model.",
    "请列举三种常见的排序算法。",
    "Why do we use version control?",
    "解释一下什么是API。",
    "Give one tip for writing clear code.",
]


def mcq_prompts(n: int) -> list[str]:
    subjects = ["math", "history", "physics", "biology", "计算机", "地理"]
    out = []
    for i in range(n):
        a, b = 3 + i, 7 + 2 * i
        out.append(
            f"以下是关于{subjects[i % len(subjects)]}的单项选择题。\n"
            f"Question {i}: What is {a} + {b}?\n"
            f"A. {a + b}\nB. {a + b + 1}\nC. {a * b}\nD. {b - a}\nAnswer with the letter only."
        )
    return out


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def argmax(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


@dataclass
class Row:
    case: str
    dtype: str
    unit: str  # "tok/s" or "q/s"
    seconds: float
    count: int
    notes: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def measure(backend: HFLocalBackend, dtype: str, params: GenParams, n_mcq: int) -> list[Row]:
    conversations = [user(p) for p in PROMPTS]
    backend.generate([user("warm up")], GenParams(max_new_tokens=4))
    singles, single_s = timed(lambda: [backend.generate([c], params)[0] for c in conversations])
    batched, batched_s = timed(lambda: backend.generate(conversations, params))
    same = sum(a.text == b.text for a, b in zip(singles, batched, strict=True))

    prompts, letters = mcq_prompts(n_mcq), ["A", "B", "C", "D"]
    one, one_s = timed(lambda: [backend.score_choices([p], letters)[0] for p in prompts])
    many, many_s = timed(lambda: backend.score_choices(prompts, letters))
    agree = sum(argmax(x) == argmax(y) for x, y in zip(one, many, strict=True))
    correct = sum(argmax(y) == 0 for y in many)
    return [
        Row("generate one-by-one", dtype, "tok/s", single_s, sum(c.usage.completion_tokens for c in singles)),
        Row(f"generate batched x{len(PROMPTS)}", dtype, "tok/s", batched_s,
            sum(c.usage.completion_tokens for c in batched), f"same text as 1-by-1: {same}/{len(PROMPTS)}"),
        Row("score_choices one-by-one", dtype, "q/s", one_s, n_mcq),
        Row("score_choices batched", dtype, "q/s", many_s, n_mcq,
            f"argmax agrees {agree}/{n_mcq}; correct {correct}/{n_mcq}"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--mcq", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/generation.json"))
    args = parser.parse_args()

    base = load_settings()
    folder = ensure_pack(args.model, base)
    params = GenParams(max_new_tokens=args.new_tokens)
    rows: list[Row] = []
    for dtype in args.dtypes.split(","):
        settings = load_settings({"dtype": dtype, "batch_size": len(PROMPTS)})
        rows += measure(HFLocalBackend(folder, settings, model_id=args.model), dtype, params, args.mcq)

    def baseline(row: Row) -> Row:
        kind = row.case.split()[0]
        return next(r for r in rows if r.dtype == row.dtype and r.case == f"{kind} one-by-one")

    def fp32_twin(row: Row) -> Row | None:
        return next((r for r in rows if r.dtype == "float32" and r.case == row.case), None)

    print(f"\nhf_local on {args.model}: {len(PROMPTS)} mixed zh/en prompts, greedy, {args.new_tokens} new "
          f"tokens; {args.mcq} four-option questions; threads={base.threads}\n")  # fmt: skip
    header = (
        f"{'case':<28} {'dtype':<9} {'seconds':>8} {'count':>6} {'rate':>13} {'vs 1-by-1':>9} {'vs fp32':>8}"
    )
    print(header + "  notes")
    print("-" * (len(header) + 40))
    for row in rows:
        twin = fp32_twin(row)
        vs_fp32 = f"{row.rate / twin.rate:.2f}x" if twin else "-"
        ratio = row.rate / baseline(row).rate
        print(f"{row.case:<28} {row.dtype:<9} {row.seconds:>8.2f} {row.count:>6} {row.rate:>7.2f} "
              f"{row.unit:<5} {ratio:>8.2f}x {vs_fp32:>8}  {row.notes}")  # fmt: skip
    speedups = {r.dtype: r.rate / baseline(r).rate for r in rows if r.case.startswith("generate batched")}
    verdicts = ", ".join(f"{d} {s:.2f}x {'PASS' if s >= 3 else 'FAIL'}" for d, s in speedups.items())
    print(f"\nbatched generation speed-up over one-by-one (target >= 3x): {verdicts}")
    import tempfile

    import torch

    from assistant.backends.hf.device import pick_dtype

    with tempfile.TemporaryDirectory() as probe_home:
        auto = str(pick_dtype("auto", "cpu", Path(probe_home))).removeprefix("torch.")
    for case in ("generate batched", "score_choices batched"):
        timed = {r.dtype: r.rate for r in rows if r.case.startswith(case)}
        if len(timed) > 1:
            faster = max(timed, key=timed.__getitem__)
            verdict = "right" if faster == auto else "WRONG"
            print(f"{case}: faster here {faster}; auto picks {auto} on this CPU "
                  f"({torch.backends.cpu.get_cpu_capability()}): {verdict}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": args.model, "threads": base.threads, "speedups": speedups,
               "rows": [{**asdict(r), "rate": r.rate} for r in rows]}  # fmt: skip
    args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()

"""Multiple-choice scoring in bf16 against float32: how often the chosen letter changes, what
it saves, and how close a call must be before bf16 can flip it.

    .venv/bin/python benchmarks/scoring_dtype.py --ceval ../shared/data/ceval [--model qwen2.5-coder-0.5b]

C-Eval's val subjects are split in two by their sorted position: set A (even) is where a
threshold is chosen, set B (odd) is where it is checked. For each set and shot count, every
question is scored by the same pack loaded in float32 and in bf16 (both with a float32 head,
as ``score_choices`` always does). Reported per set: agreement of the chosen letters,
accuracy of both, wall time of both, and the bf16 error of the top-two margin (the gap
between the best and second-best option, the number a flip depends on): its 99th
percentile and maximum, and the share of questions whose bf16 margin is below each
candidate threshold (those a "bf16, then float32 for close calls" policy would re-score).

Then the policy itself, as Ladder runs it by default on a bf16 model: bf16, and the calls
closer than ``--margin`` (the ``score_recheck_margin`` setting) scored again by a float32
copy: its agreement with float32, its wall time (the float32 copy's load included, once),
and the share of calls it re-scored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import assistant  # noqa: F401  (offline env first)
from assistant.backends.hf.local import HFLocalBackend
from assistant.backends.load import load_backend
from assistant.settings import load_settings
from evaluation.suites.exam import ExamRow, ceval_prompt, exam_files, read_exam_csv

LETTERS = ["A", "B", "C", "D"]
THRESHOLDS = [0.05, 0.1, 0.2, 0.3, 0.5]


def questions(root: Path, subjects: list[str], shots: int, limit: int) -> list[tuple[str, str]]:
    """(prompt, answer letter) for the first ``limit`` val questions of each subject."""
    val, dev = exam_files(root, "val", "ceval"), exam_files(root, "dev", "ceval")
    out = []
    for subject in subjects:
        exemplars: list[ExamRow] = read_exam_csv(dev[subject], subject, "ceval")[:shots]
        for row in read_exam_csv(val[subject], subject, "ceval")[:limit]:
            out.append((ceval_prompt(subject, row, exemplars), str(row.answer)))
    return out


def best(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


def margin(row: list[float]) -> float:
    top = sorted(row, reverse=True)
    return top[0] - top[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ceval", type=Path, required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--shots", default="0,5")
    parser.add_argument("--limit", type=int, default=6, help="val questions per subject")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--margin", type=float, default=None, help="default: the setting's default")
    args = parser.parse_args()

    subjects = sorted(exam_files(args.ceval, "val", "ceval"))
    sets = {"A (choose)": subjects[0::2], "B (check)": subjects[1::2]}
    backends = {}
    margin_default = load_settings().score_recheck_margin
    recheck = margin_default if args.margin is None else args.margin
    for dtype in ("float32", "bfloat16", "recheck"):
        rechecks = dtype == "recheck"
        settings = load_settings({"dtype": "bfloat16" if rechecks else dtype, "threads": args.threads,
                                  "batch_size": args.batch_size,
                                  "score_recheck_margin": recheck if rechecks else 0.0})  # fmt: skip
        backend = load_backend(args.model, settings)
        assert isinstance(backend, HFLocalBackend), f"{args.model} is not a local model"
        backends[dtype] = backend
    print(f"bf16 + float32 re-check of calls closer than {recheck} ('recheck' columns)")
    print(
        f"{args.model}, {args.threads} threads, batch {args.batch_size}, {args.limit} questions per subject"
    )
    header = (f"{'set':<11} {'shots':>5} {'n':>4} {'agree':>7} {'acc fp32':>8} {'acc bf16':>8} {'fp32 s':>7} "
              f"{'bf16 s':>7} {'speed':>6} {'err p99':>7} {'err max':>7} "
              + " ".join(f"{'<' + str(t):>6}" for t in THRESHOLDS)
              + f" {'recheck agree':>13} {'recheck s':>9} {'share':>6}")  # fmt: skip
    print(header)
    for name, chosen in sets.items():
        for shots in (int(s) for s in args.shots.split(",")):
            items = questions(args.ceval, chosen, shots, args.limit)
            prompts = [p for p, _ in items]
            scores, seconds = {}, {}
            for dtype, backend in backends.items():
                start = time.perf_counter()
                scores[dtype] = backend.score_choices(prompts, LETTERS, chat_template=False)
                seconds[dtype] = time.perf_counter() - start
            full, half, mixed = scores["float32"], scores["bfloat16"], scores["recheck"]
            mixed_agree = sum(best(f) == best(m) for f, m in zip(full, mixed, strict=True)) / len(items)
            share = sum(margin(h) < recheck for h in half) / len(items)
            agree = sum(best(f) == best(h) for f, h in zip(full, half, strict=True)) / len(items)
            acc = {d: sum(LETTERS[best(r)] == a for r, (_, a) in zip(s, items, strict=True)) / len(items)
                   for d, s in scores.items()}  # fmt: skip
            # how far bf16 moved the gap the decision depends on (fp32's top two options)
            errors = sorted(abs((f[best(f)] - max(x for i, x in enumerate(f) if i != best(f)))
                                - (h[best(f)] - max(x for i, x in enumerate(h) if i != best(f))))
                            for f, h in zip(full, half, strict=True))  # fmt: skip
            p99 = errors[min(len(errors) - 1, int(0.99 * len(errors)))]
            close = [sum(margin(h) < t for h in half) / len(items) for t in THRESHOLDS]
            print(f"{name:<11} {shots:>5} {len(items):>4} {agree:>7.1%} {acc['float32']:>8.3f} "
                  f"{acc['bfloat16']:>8.3f} {seconds['float32']:>7.1f} {seconds['bfloat16']:>7.1f} "
                  f"{seconds['float32'] / seconds['bfloat16']:>5.2f}x {p99:>7.3f} {errors[-1]:>7.3f} "
                  + " ".join(f"{c:>6.1%}" for c in close)
                  + f" {mixed_agree:>13.1%} {seconds['recheck']:>9.1f} {share:>6.1%}",
                  flush=True)  # fmt: skip
            flips = [(margin(f), margin(h)) for f, h in zip(full, half, strict=True) if best(f) != best(h)]
            if flips:
                print(f"{'':<11} flips: fp32/bf16 margins "
                      + ", ".join(f"{a:.3f}/{b:.3f}" for a, b in flips)
                      + f"; median error {statistics.median(errors):.3f}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Which training method should the fine-tune rung use? LoRA, prompt tuning, LoRA on the last
layers, full fine-tuning, side by side on the demo's ticket-routing scenario.

For the small pack (smollm2-135m) and the training data of the demo's routing decision
(``datasets/demo/decisions/ticket_routing.yaml``: its ``finetune.raw`` prepared as the decision
prepares it, one general example per routing example, split 0.9/0.1), each method
(``--peft``) is:

1. trained (``finetune.train.run.train``) with the decision's recipe (batch 8, max_seq_len 128)
   for the same number of optimizer steps (``--steps``, default 108: the recipe's 1.5 epochs),
   at the learning rate of its kind (``LEARNING_RATES``: LoRA the decision's 5e-4, prompt tuning
   3e-2 as peft's examples use, full fine-tuning 5e-5), no early stopping, no checkpoints, val
   loss at the start and the end only;
2. evaluated as the decision's fine-tune rung evaluates it: quality on the dev split
   (``ticket_routing_dev``, exact_match, the decision's target metric) and the general-ability
   check (``general_ability``, contains_answer; the forgetting check's metric), both with the
   rung's strategy (prompt, 12 new tokens, stop at a newline), against the base model.

Train time is the run's wall time (setup + loop); adapter size is the published folder. The
machine is shared: ``uptime``'s load average is recorded before and after each method, and LoRA
(the baseline) is trained once more at the end (``--no-rerun`` to skip) so a drift in load shows.

    .venv/bin/python benchmarks/methods.py [--steps 108] [--threads 2] [--only lora,full]

Writes ``benchmarks/out/methods.md`` (the table) and ``benchmarks/out/methods.json``,
rewritten after every method. Everything is written under a temporary LADDER_HOME whose
``models/`` links to the installed packs (``--models``, default ~/.ladder/models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)

BASE = "smollm2-135m"
DECISION = ROOT / "datasets" / "demo" / "decisions" / "ticket_routing.yaml"
OUT = ROOT / "benchmarks" / "out"
METHODS = ("lora", "last-layers", "prompt-tuning", "full")  # cheapest first: a cut-off run keeps most
LEARNING_RATES = {"lora": 5e-4, "last-layers": 5e-4, "prompt-tuning": 3e-2, "full": 5e-5}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_home(root: Path, models: Path, threads: int) -> Any:
    """A LADDER_HOME whose packs are links to the installed ones."""
    from assistant.settings import load_settings

    (root / "models").mkdir(parents=True)
    for pack in models.iterdir():
        if pack.is_dir():
            (root / "models" / pack.name).symlink_to(pack.resolve())
    os.environ["LADDER_HOME"] = str(root)
    return load_settings({"home": str(root), "threads": threads})


def train_method(
    method: str, name: str, data: Path, recipe: dict[str, Any], steps: int, settings: Any
) -> dict[str, Any]:
    from finetune.adapters import folder_size
    from finetune.train.config import TrainConfig
    from finetune.train.run import TrainRequest, train

    values = {**recipe, "peft": method, "learning_rate": LEARNING_RATES[method], "max_steps": steps,
              "patience": 0, "checkpoint_every": 0, "eval_every": steps}  # fmt: skip
    values.pop("epochs", None)
    load_before = load_average()
    started = time.perf_counter()
    result = train(TrainRequest(base=BASE, data=data, name=name, config=TrainConfig.from_dict(values),
                                overwrite=True), settings)  # fmt: skip
    wall = time.perf_counter() - started
    res, peft = result.manifest["results"], result.manifest["peft"]
    counts = ("trainable_parameters", "total_parameters")
    return {
        "method": method,
        "learning_rate": values["learning_rate"],
        "batching": result.manifest["hyperparameters"]["batching"],
        "steps": res["steps"],
        "train_wall_s": wall,
        "loop_s": res["train_time_s"],
        "tokens_per_s": res["tokens_per_s"],
        "first_val_loss": res["first_val_loss"],
        "val_loss": res["val_loss"],
        **{k: peft[k] for k in counts},
        "size_bytes": folder_size(result.path),
        "load_before": load_before,
        "load_after": load_average(),
        "details": {k: v for k, v in peft.items() if k not in counts},
    }


def evaluate(model: str, config: Any, settings: Any) -> dict[str, Any]:
    """The fine-tune rung's dev and general-ability numbers for ``model``."""
    from evaluation.plan import EvalPlan
    from evaluation.runner import Runner

    runner = Runner(settings)
    strategy = dict(config.finetune.strategy)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    dev = runner.run(EvalPlan(suite=config.dev, strategies=[strategy], model=model, no_judge=True,
                              latency_sample=0))  # fmt: skip
    out["dev_em"] = dev.strategies[0].metrics["exact_match"].mean
    general = runner.run(EvalPlan(suite=config.general, strategies=[strategy], model=model, no_judge=True,
                                  latency_sample=0))  # fmt: skip
    out["general"] = general.strategies[0].metrics["contains_answer"].mean
    out["eval_s"] = time.perf_counter() - started
    return out


def fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def table(report: dict[str, Any]) -> str:
    base = report.get("base", {})
    lines = [
        f"Base {BASE}: dev exact_match {fmt(base.get('dev_em'))}, general_ability contains_answer "
        f"{fmt(base.get('general'))}. {report['steps']} optimizer steps of 8 examples for every method "
        f"({report['train_examples']} training examples), {report['threads']} threads; "
        f"load average at the start {report['load_start']}.",
        "",
        "| method | lr | trainable params | steps | train time (s) | tokens/s | val loss (start → end) "
        "| dev EM | general (base → tuned, change) | adapter size | load avg before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["methods"]:
        share = r["trainable_parameters"] / r["total_parameters"]
        change = None if r.get("general") is None else r["general"] - base.get("general", 0.0)
        lines.append(
            f"| {r['label']} | {r['learning_rate']:g} | {r['trainable_parameters']:,} ({share:.2%}) "
            f"| {r['steps']} | {r['train_wall_s']:.0f} | {fmt(r['tokens_per_s'], ',.0f')} "
            f"| {fmt(r['first_val_loss'])} → {fmt(r['val_loss'])} | {fmt(r.get('dev_em'))} "
            f"| {fmt(base.get('general'), '.3f')} → {fmt(r.get('general'))}, {fmt(change, '+.3f')} "
            f"| {size(r['size_bytes'])} | {r['load_before']} → {r['load_after']} |"
        )
    return "\n".join(lines) + "\n"


def save(report: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "methods.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (OUT / "methods.md").write_text(table(report), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=108)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated methods (default: all four)")
    parser.add_argument("--no-rerun", action="store_true", help="do not train LoRA again at the end")
    parser.add_argument("--models", type=Path, default=Path.home() / ".ladder" / "models")
    args = parser.parse_args()
    methods = [m for m in METHODS if args.only is None or m in args.only.split(",")]

    from assistant.progress import NullProgress
    from evaluation.decide.config import load_decision_config
    from evaluation.decide.training import prepared_data

    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="methods_") as tmp:
        settings = make_home(Path(tmp) / "home", args.models, args.threads)
        config = load_decision_config(DECISION)
        data = prepared_data(config, settings, NullProgress())
        train_examples = sum(
            1 for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines() if line
        )
        report: dict[str, Any] = {"base_model": BASE, "steps": args.steps, "threads": args.threads,
                                  "train_examples": train_examples, "load_start": load_average(),
                                  "methods": []}  # fmt: skip
        report["base"] = evaluate(BASE, config, settings)
        print(f"[base] {report['base']}  load {load_average()}", flush=True)
        save(report)
        runs = [(m, m) for m in methods]
        if "lora" in methods and not args.no_rerun:
            runs.append(("lora", "lora (again, last)"))
        for index, (method, label) in enumerate(runs):
            name = f"method-{method}-{index}"
            row = train_method(method, name, data, dict(config.finetune.train), args.steps, settings)
            row["label"] = label
            row.update(evaluate(f"{BASE}+{name}", config, settings))
            print(f"[{label}] {json.dumps({k: v for k, v in row.items() if k != 'details'})}", flush=True)
            report["methods"].append(row)
            save(report)
    report["total_wall_min"] = (time.perf_counter() - started_all) / 60
    save(report)
    print(table(report))
    print(f"total {report['total_wall_min']:.1f} min, load average now {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

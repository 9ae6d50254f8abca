"""Which recipe should the decision's fine-tune use by default? Measured on a task that is not the demo.

For the base model (qwen2.5-coder-0.5b), each candidate recipe (general-mix ratio, epochs,
learning rate; max_seq_len 256, batch 8, the rest TrainConfig's defaults) is:

1. prepared from ``datasets/sft/support_tickets.jsonl`` with ``finetune.data.prepare.prepare``
   (split 0.9/0.1/0, stratified by label, the recipe's general set and ratio), as a decision's
   ``prepared_data`` does;
2. estimated as a decision estimates it (``readiness.planned_train_tokens`` over the speed
   ``readiness.estimates`` finds, all estimates taken before this script trains anything);
3. trained as a LoRA adapter ``recipe-<key>`` (``finetune.train.run.train``), timed;
4. evaluated by the evaluation ``Runner`` on ``datasets/suites/support_tickets.yaml``
   (exact_match, 120 held-out tickets) and on a seeded subset of C-Eval val (accuracy,
   logprob, 0-shot) as the general-ability (forgetting) measure, against the base model.

The demo (datasets/demo/**) takes no part. C-Eval is read from its folder by path
(``--ceval``, default /work/shared/data/ceval); nothing of it is copied into the repository.
A recipe marked ``estimate_only`` is estimated but not trained (the current defaults: their
estimated minutes are the reason).

    .venv/bin/python benchmarks/recipe.py [--ceval DIR] [--ceval-n 100] [--only A,B [--keep]]

Writes ``benchmarks/out/recipe.md`` (the table) and ``benchmarks/out/recipe.json`` (raw
numbers), rewritten after every recipe so an interrupted run keeps what finished.

The default is chosen by a rule fixed before the results were seen: the highest
support_tickets EM among trained recipes whose C-Eval drop is <= 0.05 and whose measured
training time is <= 30 min; EM within 0.02 of the best is a tie, won by the cheaper recipe
(fewer measured training minutes).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)

BASE = "qwen2.5-coder-0.5b"
DOMAIN = ROOT / "datasets" / "sft" / "support_tickets.jsonl"
TICKETS_SUITE = ROOT / "datasets" / "suites" / "support_tickets.yaml"
OUT = ROOT / "benchmarks" / "out"
SPLIT = "0.9,0.1,0"
COMMON_TRAIN = {"max_seq_len": 256, "batch_size": 8}
MAX_DROP = 0.05
MAX_MINUTES = 30.0
TIE_EM = 0.02


@dataclass(frozen=True)
class Recipe:
    key: str
    ratio: float
    epochs: float
    learning_rate: float
    estimate_only: bool = False

    def train_dict(self) -> dict[str, Any]:
        return {**COMMON_TRAIN, "epochs": self.epochs, "learning_rate": self.learning_rate}


RECIPES = (
    Recipe("A", ratio=1.0, epochs=2, learning_rate=2e-4),
    Recipe("B", ratio=1.0, epochs=2, learning_rate=5e-4),
    Recipe("C", ratio=0.5, epochs=1, learning_rate=5e-4),
    Recipe("current", ratio=5.0, epochs=3, learning_rate=2e-4, estimate_only=True),
)

DECISION = """\
name: recipe_{key}
model: {model}
suites:
  dev: {tickets}
  test: {tickets}
targets:
  exact_match: ">= 0.80"
rungs:
  - {{strategy: prompt}}
allow_finetune: true
finetune:
  raw: [{domain}]
  prepare: {{general: default, ratio: {ratio}, split: "{split}", stratify_by: label}}
  train: {train}
"""


def ceval_suite(ceval: Path, work: Path) -> Path:
    import yaml

    spec = {"name": "ceval_val_subset", "kind": "mcq", "format": "ceval", "data": str(ceval),
            "split": "val", "k_shot": 0, "metrics": ["accuracy"]}  # fmt: skip
    path = work / "ceval_val.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def ceval_ids(suite: Path, n: int, seed: int) -> list[str]:
    from evaluation.suites.spec import load_suite

    ids = sorted(item.question.id for item in load_suite(suite).items)
    return sorted(random.Random(seed).sample(ids, min(n, len(ids))))


def estimate(recipe: Recipe, settings: Any, work: Path) -> dict[str, Any]:
    """What a decision with this recipe would plan: tokens and minutes on this machine."""
    from evaluation.decide.config import load_decision_config
    from evaluation.decide.readiness import (
        estimates,
        load_training_examples,
        local_base,
        planned_train_tokens,
    )
    from finetune.train.config import TrainConfig

    path = work / f"decision_{recipe.key}.yaml"
    path.write_text(
        DECISION.format(key=recipe.key, model=BASE, tickets=TICKETS_SUITE, domain=DOMAIN,
                        ratio=recipe.ratio, split=SPLIT, train=json.dumps(recipe.train_dict())),
        encoding="utf-8",
    )  # fmt: skip
    config = load_decision_config(path)
    train = TrainConfig.from_dict(config.finetune.train)
    tokens = planned_train_tokens(config, settings, load_training_examples(config), BASE, train)
    base, base_dir = local_base(BASE, settings)
    local = estimates(settings, base, base_dir, tokens)[0]
    minutes = local["hours"] * 60 if local.get("hours") is not None else None
    return {"planned_tokens": tokens, "estimate_min": minutes,
            "tokens_per_s": local.get("tokens_per_s"), "speed_source": local.get("source")}  # fmt: skip


def prepare_data(recipe: Recipe, settings: Any, work: Path, ceval: Path) -> tuple[Path, dict[str, int]]:
    from evaluation.suites.source import SuiteFiles
    from finetune.data.prepare import PrepareConfig, prepare, prepare_options

    recipe_prepare = {"general": "default", "ratio": recipe.ratio, "split": SPLIT, "stratify_by": "label"}
    options = prepare_options(recipe_prepare)
    out = work / f"data_{recipe.key}"
    prep = PrepareConfig(domain=(DOMAIN,), out=out, suites=(TICKETS_SUITE, ceval), force=True, **options)
    result = prepare(prep, settings, suites=SuiteFiles())
    lines = (out / "train.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line]
    # ``source`` is ``<file>:<line>``: every row not from the domain file is a general example.
    general = sum(1 for r in rows if not str(r.get("source", "")).startswith(f"{DOMAIN}:"))
    return out, {"train": result.counts.get("train", len(rows)), "val": result.counts.get("val", 0),
                 "general": general, "domain": len(rows) - general}  # fmt: skip


def train_adapter(recipe: Recipe, settings: Any, data: Path) -> dict[str, Any]:
    from finetune.train.config import TrainConfig
    from finetune.train.run import TrainRequest, train

    config = TrainConfig.from_dict(recipe.train_dict())
    started = time.perf_counter()
    result = train(TrainRequest(base=BASE, data=data, name=f"recipe-{recipe.key}", config=config,
                                overwrite=True), settings)  # fmt: skip
    wall = time.perf_counter() - started
    res = result.manifest["results"]
    return {"train_wall_min": wall / 60, "status": res.get("status"), "steps": res.get("steps"),
            "total_steps": res.get("total_steps"), "tokens_seen": res.get("tokens_seen"),
            "tokens_per_s": res.get("tokens_per_s"), "train_time_s": res.get("train_time_s"),
            "first_val_loss": res.get("first_val_loss"), "val_loss": res.get("val_loss"),
            "best_step": res.get("best_step"), "epochs_done": res.get("epochs")}  # fmt: skip


def evaluate(model: str, settings: Any, ceval: Path, ids: list[str]) -> dict[str, Any]:
    from evaluation.plan import EvalPlan
    from evaluation.runner import Runner

    runner = Runner(settings)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    tickets = runner.run(EvalPlan(suite=TICKETS_SUITE, model=model, latency_sample=0))
    out["tickets_em"] = tickets.strategies[0].metrics["exact_match"].mean
    out["tickets_run"] = tickets.run_id
    out["tickets_s"] = time.perf_counter() - started
    started = time.perf_counter()
    exam = runner.run(EvalPlan(suite=ceval, model=model, mode="logprob", items=ids, latency_sample=0))
    out["ceval_acc"] = exam.strategies[0].metrics["accuracy"].mean
    out["ceval_run"] = exam.run_id
    out["ceval_s"] = time.perf_counter() - started
    out["_runs"] = (tickets, exam)
    return out


def same_recipe(earlier: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    """The earlier run's row for the same recipe (key, ratio, epochs, learning rate, base model)."""
    if earlier.get("base_model") != BASE:
        return None
    same = ("key", "ratio", "epochs", "learning_rate")
    return next((old for old in earlier.get("recipes", []) if all(old.get(k) == row[k] for k in same)), None)


def kept_row(earlier: dict[str, Any], row: dict[str, Any], ids: list[str]) -> dict[str, Any] | None:
    """An earlier run's results for the same recipe, when they were measured on the same items."""
    old = same_recipe(earlier, row) if earlier.get("ceval_ids") == ids else None
    return old if old is not None and old.get("tickets_em") is not None else None


def fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def choose(rows: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The rule fixed before the results: see the module docstring."""
    eligible = [
        r for r in rows
        if r.get("tickets_em") is not None and r.get("ceval_drop") is not None
        and r["ceval_drop"] <= MAX_DROP + 1e-9 and r["train_wall_min"] <= MAX_MINUTES
    ]  # fmt: skip
    if not eligible:
        return None, "no trained recipe kept the C-Eval drop <= 0.05 within 30 min of training"
    best = max(r["tickets_em"] for r in eligible)
    tied = [r for r in eligible if r["tickets_em"] >= best - TIE_EM - 1e-9]
    pick = min(tied, key=lambda r: r["train_wall_min"])
    why = (f"eligible: {', '.join(r['key'] for r in eligible)}; best EM {best:.3f}; within {TIE_EM} of it: "
           f"{', '.join(r['key'] for r in tied)}; cheapest of those: {pick['key']} "
           f"({pick['train_wall_min']:.1f} min)")  # fmt: skip
    return pick["key"], why


def table(report: dict[str, Any]) -> str:
    base = report.get("base", {})
    lines = [
        f"Base {BASE}: support_tickets EM {fmt(base.get('tickets_em'))}, C-Eval val subset "
        f"({report['ceval_n']} items, seed {report['seed']}, 0-shot logprob) "
        f"accuracy {fmt(base.get('ceval_acc'))}.",
        "",
        "| recipe | domain ex | general ex | epochs | lr | steps | train min (measured) | estimate min "
        "| support_tickets EM | C-Eval acc (base → tuned, drop) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["recipes"]:
        if r.get("estimate_only"):
            measured, steps, em, ceval = "not trained", "n/a", "n/a", "n/a"
        elif r.get("train_wall_min") is None:
            measured, steps, em, ceval = "not run", "n/a", "n/a", "n/a"
        else:
            measured = f"{r['train_wall_min']:.1f}"
            steps = f"{r['steps']}/{r['total_steps']}"
            em = fmt(r.get("tickets_em"))
            ceval = (f"{fmt(base.get('ceval_acc'), '.2f')} → {fmt(r.get('ceval_acc'), '.2f')}, "
                     f"{fmt(r.get('ceval_drop'), '+.2f')}")  # fmt: skip
        domain = r.get("domain_ex", "n/a")
        general = r.get("general_ex", "n/a")
        lines.append(
            f"| {r['key']} (ratio {r['ratio']:g}) | {domain} | {general} | {r['epochs']:g} "
            f"| {r['learning_rate']:g} "
            f"| {steps} | {measured} | {fmt(r.get('estimate_min'), '.1f')} | {em} | {ceval} |"
        )
    if report.get("choice_rule"):
        lines += ["", f"Choice by the rule: **{report.get('choice') or 'none'}**: {report['choice_rule']}"]
    return "\n".join(lines) + "\n"


def save(report: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "recipe.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (OUT / "recipe.md").write_text(table(report), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ceval", type=Path, default=Path("/work/shared/data/ceval"))
    parser.add_argument("--ceval-n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="comma-separated recipe keys to train (default: all)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the results of recipes not trained now from benchmarks/out/recipe.json "
        "(same recipe, base model and C-Eval items), so runs with --only add up to one table",
    )
    args = parser.parse_args()

    from assistant.settings import load_settings
    from evaluation.decide.training import forgetting

    settings = load_settings()
    only = set(args.only.split(",")) if args.only else None
    total_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recipe_") as tmp:
        work = Path(tmp)
        suite = ceval_suite(args.ceval.resolve(), work)
        ids = ceval_ids(suite, args.ceval_n, args.seed)
        report: dict[str, Any] = {"base_model": BASE, "ceval_n": len(ids), "seed": args.seed,
                                  "ceval_ids": ids, "recipes": []}  # fmt: skip
        earlier = json.loads((OUT / "recipe.json").read_text(encoding="utf-8")) if args.keep else {}
        # Every estimate before any training: the speed a decision would use now (a stored run).
        for recipe in RECIPES:
            row = {"key": recipe.key, "ratio": recipe.ratio, "epochs": recipe.epochs,
                   "learning_rate": recipe.learning_rate, "estimate_only": recipe.estimate_only}  # fmt: skip
            row.update(estimate(recipe, settings, work))
            first = same_recipe(earlier, row)
            if first is not None and first.get("estimate_min") is not None:
                # The estimate as the first run took it, before any of these trainings: a later
                # run's speed comes from what the earlier runs trained.
                row.update(estimate_min_rerun=row["estimate_min"], tokens_per_s_rerun=row["tokens_per_s"])
                row.update(
                    {k: first[k] for k in ("planned_tokens", "estimate_min", "tokens_per_s", "speed_source")}
                )
            print(f"[{recipe.key}] planned {row['planned_tokens']} tokens, estimate "
                  f"{fmt(row['estimate_min'], '.1f')} min at {fmt(row['tokens_per_s'], '.0f')} tok/s "
                  f"({row['speed_source']})", flush=True)  # fmt: skip
            report["recipes"].append(row)
        save(report)

        started = time.perf_counter()
        base_eval = evaluate(BASE, settings, suite, ids)
        base_runs = base_eval.pop("_runs")
        report["base"] = {**base_eval, "eval_wall_s": time.perf_counter() - started}
        print(f"[base] EM {fmt(base_eval['tickets_em'])}, C-Eval {fmt(base_eval['ceval_acc'])} "
              f"({report['base']['eval_wall_s']:.0f} s)", flush=True)  # fmt: skip
        save(report)

        for recipe, row in zip(RECIPES, report["recipes"], strict=True):
            if recipe.estimate_only:
                continue
            if only is not None and recipe.key not in only:
                kept = kept_row(earlier, row, ids)
                if kept is not None:
                    row.update(kept, kept_from_earlier_run=True)
                    print(
                        f"[{recipe.key}] kept from the earlier run: EM {fmt(row['tickets_em'])}", flush=True
                    )
                continue
            data, counts = prepare_data(recipe, settings, work, suite)
            row.update(domain_ex=counts["domain"], general_ex=counts["general"], train_ex=counts["train"],
                       val_ex=counts["val"])  # fmt: skip
            print(f"[{recipe.key}] prepared {counts}", flush=True)
            row.update(train_adapter(recipe, settings, data))
            print(f"[{recipe.key}] trained {row['steps']}/{row['total_steps']} steps in "
                  f"{row['train_wall_min']:.1f} min ({row['status']}, "
                  f"{fmt(row['tokens_per_s'], '.0f')} tok/s)",
                  flush=True)  # fmt: skip
            save(report)
            started = time.perf_counter()
            tuned = evaluate(f"{BASE}+recipe-{recipe.key}", settings, suite, ids)
            _, exam = tuned.pop("_runs")
            row.update(tuned, eval_wall_s=time.perf_counter() - started)
            check = forgetting(base_runs[1], exam, "accuracy", MAX_DROP)
            row.update(ceval_drop=check.drop, ceval_drop_p=check.p_value, forgetting_passed=check.passed)
            print(f"[{recipe.key}] EM {fmt(row['tickets_em'])}, C-Eval {fmt(row['ceval_acc'])} "
                  f"(drop {fmt(row['ceval_drop'], '+.3f')}, p {fmt(row['ceval_drop_p'])}) "
                  f"({row['eval_wall_s']:.0f} s)", flush=True)  # fmt: skip
            trained = [
                r for r in report["recipes"] if r.get("tickets_em") is not None and not r["estimate_only"]
            ]
            report["choice"], report["choice_rule"] = choose(trained)
            save(report)
        trained = [r for r in report["recipes"] if r.get("tickets_em") is not None and not r["estimate_only"]]
        report["choice"], report["choice_rule"] = choose(trained)
        report["total_wall_min"] = (time.perf_counter() - total_started) / 60
        save(report)
    print()
    print(table(report))
    print(f"total wall {report['total_wall_min']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

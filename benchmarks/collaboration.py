"""The collaboration rungs on the demo: ``route`` and ``delegate`` against the base and the fine-tune.

    python benchmarks/collaboration.py route      # ticket routing dev + general ability suite
    python benchmarks/collaboration.py delegate   # datasets/delegate/delegate_tickets
    python benchmarks/collaboration.py route delegate --limit 4   # plumbing only

Needs the demo's routing adapter (``ladder demo`` trains ``demo-ticket-routing-ladder`` on
``qwen2.5-coder-0.5b``) and the embedder pack for the router (the ``embedding_model`` setting).

``route``: exact_match on the routing dev split and contains_answer on the general-ability suite
(the decision's forgetting metric) for the base, the fine-tune (base + adapter) and ``route`` (the
same model, a router per question), each with its bootstrap CI; then the router's accuracy on
those questions (dev: in-domain, general: general), the held-out balanced accuracy its threshold
was calibrated to, and its time per question (each question routed alone).

``delegate``: exact_match on ``delegate_tickets`` (``<queue> <refund>``) for the base alone, the
adapter alone (both plain prompting) and ``delegate`` (``datasets/delegate/delegate.yaml``), with
the two parts scored apart: the queue code right, the refund right.

Runs in a temporary LADDER_HOME that links the real home's model packs and adapters (the real
store gets no runs). Prints Markdown tables; it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)

BASE = "qwen2.5-coder-0.5b"
ADAPTER = "demo-ticket-routing-ladder"
DEMO = ROOT / "datasets" / "demo" / "suites"
DELEGATE = ROOT / "datasets" / "delegate"
# How the fine-tuned model is asked in the demo's decision (ticket_routing.yaml, finetune.strategy).
ASKED = {"max_new_tokens": 12, "stop": ["\n"]}


def temporary_home(home: Path) -> Path:
    from assistant.settings import load_settings

    real = load_settings()
    home.mkdir(parents=True)
    for name, folder in (("models", real.models_dir), ("adapters", real.adapters_dir)):
        if folder.is_dir():
            (home / name).symlink_to(folder.resolve(), target_is_directory=True)
    return home


def evaluate(settings: Any, suite: Path, strategy: dict[str, Any], model: str, limit: int | None) -> Any:
    from evaluation.runner import EvalPlan, Runner
    from evaluation.store import RunStore

    plan = EvalPlan(suite=suite, strategies=[strategy], model=model, no_judge=True, limit=limit,
                    latency_sample=0)  # fmt: skip
    with RunStore(settings.db_path) as store:
        return Runner(settings, store).run(plan)


def cell(run: Any, metric: str) -> str:
    m = run.strategies[0].metrics.get(metric)
    if m is None or m.mean is None:
        return "n/a"
    return f"{m.mean:.3f} [{m.low:.3f}, {m.high:.3f}]"


def route_table(settings: Any, limit: int | None) -> list[str]:
    from assistant.strategies.route import adapter_training_data
    from evaluation.decide.route import measure_router
    from evaluation.suites.spec import load_suite

    tuned = f"{BASE}+{ADAPTER}"
    train = adapter_training_data(settings.adapters_dir / ADAPTER)
    assert train is not None, f"{ADAPTER} names no training data"
    route = {"strategy": "route", "in_domain": [str(train)], **ASKED}
    prompt = {"strategy": "prompt", **ASKED}
    lanes = [("base", prompt, BASE), ("fine-tune", prompt, tuned),
             ("route", route, tuned)]  # fmt: skip
    lines = ["| model | routing exact_match (dev) | general contains_answer | wall s (dev + general) |",
             "|---|---|---|---|"]  # fmt: skip
    runs: dict[str, tuple[Any, Any]] = {}
    for label, strategy, model in lanes:
        started = time.perf_counter()
        dev = evaluate(settings, DEMO / "ticket_routing_dev.yaml", strategy, model, limit)
        general = evaluate(settings, DEMO / "general_ability.yaml", strategy, model, limit)
        wall = time.perf_counter() - started
        runs[label] = (dev, general)
        lines.append(
            f"| {label} | {cell(dev, 'exact_match')} | {cell(general, 'contains_answer')} | {wall:.0f} |"
        )
    lines += [
        "",
        "route's answers identical to the fine-tune's on dev: "
        f"{same(runs['route'][0], runs['fine-tune'][0])}; to the base's on the general suite: "
        f"{same(runs['route'][1], runs['base'][1])}",
    ]
    dev_q = [i.question.user_input for i in load_suite(DEMO / "ticket_routing_dev.yaml").items][:limit]
    general_q = [i.question.user_input for i in load_suite(DEMO / "general_ability.yaml").items][:limit]
    r = measure_router(settings, route, dev_q, general_q)
    lines += [
        "",
        "| router | value |",
        "|---|---|",
        f"| embedder | {r['embedder']} (k={r['k']}, threshold {r['threshold']:.4f}, "
        f"calibrated: {r['calibrated']}) |",
        f"| fitted on | {r['in_domain_examples']} in-domain, {r['general_examples']} general questions "
        f"({r['fit_s']:.1f} s, embedding included) |",
        f"| held-out balanced accuracy (calibration split, {r['validation_items']} questions) | "
        f"{r['validation_balanced_accuracy']:.3f} |",
        f"| dev questions sent to the adapter | {r['accuracy_in_domain']:.3f} of {r['in_domain_items']} |",
        f"| general questions kept on the base | {r['accuracy_general']:.3f} of {r['general_items']} |",
        f"| router ms/question (one at a time) | mean {r['router_ms']:.1f}, p95 {r['router_ms_p95']:.1f} "
        f"({r['timed_questions']} questions) |",
    ]
    return lines


def same(a: Any, b: Any) -> str:
    """How many answers of run ``a`` are, word for word, run ``b``'s to the same item."""
    theirs = {r.item_id: r.response for r in b.records}
    equal = sum(r.response == theirs.get(r.item_id) for r in a.records)
    return f"{equal}/{len(a.records)}"


def parts(run: Any) -> tuple[float, float]:
    """(queue right, refund right) shares of a delegate_tickets run."""
    queue = refund = 0
    for record in run.records:
        code, amount = str(record.reference).split()
        text = str(record.response or "")
        queue += code in text
        refund += amount in re.findall(r"\d+(?:\.\d+)?", text)
    n = max(len(run.records), 1)
    return queue / n, refund / n


def delegate_table(settings: Any, limit: int | None) -> list[str]:
    import yaml

    tuned = f"{BASE}+{ADAPTER}"
    plain = {"strategy": "prompt", "max_new_tokens": 24, "stop": ["\n"]}
    delegate = yaml.safe_load((DELEGATE / "delegate.yaml").read_text(encoding="utf-8"))
    lanes = [("base alone", plain, BASE), ("adapter alone", plain, tuned), ("delegate", delegate, tuned)]
    lines = ["| strategy | exact_match | queue right | refund right | model calls/question | wall s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label, strategy, model in lanes:
        started = time.perf_counter()
        run = evaluate(settings, DELEGATE / "delegate_tickets.yaml", strategy, model, limit)
        wall = time.perf_counter() - started
        queue, refund = parts(run)
        calls = sum(r.model_calls for r in run.records) / max(len(run.records), 1)
        lines.append(
            f"| {label} | {cell(run, 'exact_match')} | {queue:.3f} | {refund:.3f} | {calls:.1f} "
            f"| {wall:.0f} |"
        )
        for record in run.records[:3]:
            lines.append(f"|  | e.g. {record.reference} → {str(record.response)[:60]!r} |  |  |  |  |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", choices=["route", "delegate"])
    parser.add_argument("--limit", type=int, default=None, help="the first N items of each suite")
    args = parser.parse_args(argv)
    from assistant.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="ladder-collab-") as tmp:
        home = temporary_home(Path(tmp) / "home")
        os.environ["LADDER_HOME"] = str(home)
        settings = load_settings()
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
        for part in args.parts:
            started = time.perf_counter()
            table = (
                route_table(settings, args.limit) if part == "route" else delegate_table(settings, args.limit)
            )
            print(
                f"\n## {part} ({time.perf_counter() - started:.0f} s, "
                f"load average {os.getloadavg()[0]:.1f})\n"
            )
            print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

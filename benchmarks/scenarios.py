"""Decisions whose right verdict is known: expected vs actual, with wall times.

Each held-out scenario in ``datasets/heldout/<scenario>/`` (see its README) is a decision
written as a new user would write it, with the verdict it must reach in ``expected.yaml``
(status, recommended rung, gap, next action). This script builds the scenario's knowledge base
from its ``kb/`` folder with the default settings (a new user's kb: no chunking override), runs
the decision exactly as ``ladder decide`` does, and prints one Markdown table of expected vs
actual, each decision's explanation under it, and ``MISMATCH`` lines for what came out wrong.

    python benchmarks/scenarios.py                      # every datasets/heldout/* scenario
    python benchmarks/scenarios.py port_facts cert_exam # some
    python benchmarks/scenarios.py --demo               # the demo's three decisions instead
    python benchmarks/scenarios.py --demo --limit 3 --model smollm2-135m   # plumbing only

Options: ``--out DIR`` (default ``benchmarks/out/scenarios``: each decision's md/html/json in
``DIR/<scenario>/`` and ``DIR/summary.json``), ``--model REF``, ``--limit N`` (the first N items
of each suite, and fine-tuning recommended rather than trained: a check of the plumbing whose
verdicts mean nothing), ``--language en|zh``.

It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)
from evaluation.decide.result import RECOMMENDED_ONLY, Decision  # noqa: E402

HELDOUT = ROOT / "datasets" / "heldout"
CHANCE_CODES = ("at_chance", "at_majority")
FIELDS = ("status", "recommended", "gap", "next_action")


# --- the pure part: what a decision says, in expected.yaml's terms ---------------------------


def gap_kinds(decision: Decision) -> list[str]:
    """The kinds of the gaps found, a knowledge gap whose evidence puts every rung at chance
    (or at the majority label) being called ``does_not_know``."""
    kinds = []
    for gap in decision.gaps:
        at_chance = gap.kind == "knowledge" and any(e.code in CHANCE_CODES for e in gap.evidence)
        kinds.append("does_not_know" if at_chance else gap.kind)
    return kinds


def gap_matches(expected: str | None, decision: Decision) -> bool:
    """An expected ``null`` gap matches a decision with no gap, or one that met its target
    (whatever a rung on the way fell short of); an expected kind matches when it is among
    the kinds found."""
    found = gap_kinds(decision)
    if expected is None:
        return not found or decision.passed
    return expected in found


def next_action(decision: Decision) -> str:
    """What the decision tells its owner to do next, in expected.yaml's words:

    - ``deploy``: the target is met (or tied) by a rung;
    - ``finetune``: the fine-tune rung was recommended but not trained (``recommended_only``)
      and readiness says it is ready, or ready but for the time budget;
    - ``larger_model_or_knowledge_source``: the model does not know this (every rung at chance);
    - ``more_data``: the data are too small to decide, or too few training examples;
    - ``none``: none of these.
    """
    if decision.passed:
        return "deploy"
    ready = decision.readiness
    finetune = next((r for r in decision.rungs if r.strategy == "finetune"), None)
    if (
        finetune is not None
        and finetune.state == RECOMMENDED_ONLY
        and ready is not None
        and (ready.ready or ready.only_over_budget)
    ):
        return "finetune"
    kinds = gap_kinds(decision)
    if "does_not_know" in kinds:
        return "larger_model_or_knowledge_source"
    too_few = ready is not None and any(c.name == "examples" and not c.ok for c in ready.checks)
    if "data_too_small" in kinds or too_few:
        return "more_data"
    return "none"


def recommended_rung(decision: Decision) -> str | None:
    """The recommended rung's strategy (``label (strategy)`` when its label differs); None
    unless the decision met its target."""
    if not decision.passed or decision.recommended is None:
        return None
    strategy = decision.rung(decision.recommended).strategy
    return strategy if strategy == decision.recommended else f"{decision.recommended} ({strategy})"


def actual_of(decision: Decision) -> dict[str, Any]:
    return {
        "status": "met" if decision.passed else "not_met",
        "recommended": recommended_rung(decision),
        "gap": gap_kinds(decision),
        "next_action": next_action(decision),
    }


def compare(expected: dict[str, Any], decision: Decision) -> dict[str, bool]:
    """Each expected field against the decision: True where it matches."""
    actual = actual_of(decision)
    rung = None
    if actual["recommended"] is not None:
        rung = decision.rung(str(decision.recommended))
    want = expected.get("recommended")
    return {
        "status": expected.get("status") == actual["status"],
        "recommended": (rung is None)
        if want is None
        else (rung is not None and want in (rung.strategy, rung.label)),
        "gap": gap_matches(expected.get("gap"), decision),
        "next_action": expected.get("next_action") == actual["next_action"],
    }


# --- running ---------------------------------------------------------------------------------


class StampedProgress:
    """The ``Progress`` protocol as timestamped lines on stdout: each step's start, its notes,
    and a count at most every ``every_s`` seconds (a log, not a live bar)."""

    def __init__(self, every_s: float = 30.0) -> None:
        self._every_s = every_s
        self._stage = ""
        self._total: float | None = None
        self._done = 0.0
        self._last = 0.0

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        self._stage, self._total, self._done, self._last = stage, total, 0.0, time.monotonic()
        self._say(f"{stage}" + (f" ({total:g} {unit})" if total else ""))

    def advance(self, amount: float = 1) -> None:
        self._done += amount
        if time.monotonic() - self._last >= self._every_s:
            self._last = time.monotonic()
            self._say(f"  {self._stage}: {self._done:g}" + (f" / {self._total:g}" if self._total else ""))

    def note(self, message: str) -> None:
        self._say(message)


@dataclass
class Outcome:
    scenario: str
    expected: dict[str, Any]
    decision: Decision | None = None
    wall_s: float = 0.0
    kb_s: float | None = None
    error: str | None = None
    matches: dict[str, bool] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return self.decision is not None and all(self.matches.get(f, False) for f in FIELDS)


def run_one(
    key: str,
    config_path: Path,
    expected: dict[str, Any],
    settings: Any,
    args: argparse.Namespace,
    progress: StampedProgress,
    kb_folder: Path | None = None,
    kb_s: float | None = None,
) -> Outcome:
    from evaluation.decide.demo import build_kb
    from evaluation.decide.engine import load_decision_config, run_decision
    from evaluation.decide.report import write_all

    outcome = Outcome(key, expected, kb_s=kb_s)
    try:
        config = load_decision_config(config_path)  # unnamed: named after its folder, the scenario
        if args.model:
            config.model = args.model
        if args.limit:
            config.limit = args.limit
        if kb_folder is not None and config.kb:
            # The default settings: a new user's kb (no chunking override, unlike the demo's).
            outcome.kb_s = build_kb(config.kb, kb_folder, settings, progress)
        progress.note(f"scenario {key}: expected {expected}")
        began = time.perf_counter()
        # --limit is plumbing: fine-tuning is recommended, not trained on the full data.
        allow = False if args.limit else None
        decision = run_decision(config, settings, progress, allow_finetune=allow, language=args.language)
        outcome.wall_s = time.perf_counter() - began
        outcome.decision = decision
        outcome.matches = compare(expected, decision)
        write_all(decision, Path(args.out) / key)
    except Exception as error:  # one scenario's failure must not hide the others' numbers
        import traceback

        traceback.print_exc()
        outcome.error = f"{type(error).__name__}: {error}"
    return outcome


def heldout_folders(names: Sequence[str]) -> list[Path]:
    """The named scenario folders (every one by default); ValueError for a name not there."""
    folders = sorted(p for p in HELDOUT.iterdir() if (p / "decision.yaml").is_file())
    if not names:
        return folders
    known = {p.name: p for p in folders}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(known)}")
    return [known[n] for n in names]


def heldout_runs(
    folders: Sequence[Path], settings: Any, args: argparse.Namespace, progress: StampedProgress
) -> list[Outcome]:
    import yaml

    outcomes = []
    for folder in folders:
        expected = yaml.safe_load((folder / "expected.yaml").read_text(encoding="utf-8"))
        expected = {f: expected.get(f) for f in FIELDS}
        kb = folder / "kb" if (folder / "kb").is_dir() else None
        outcomes.append(
            run_one(folder.name, folder / "decision.yaml", expected, settings, args, progress, kb)
        )
    return outcomes


def demo_runs(settings: Any, args: argparse.Namespace, progress: StampedProgress) -> list[Outcome]:
    from evaluation.decide.demo import SCENARIOS, demo_dir, ensure_kb

    kb_s: float | None = ensure_kb(settings, progress)  # the demo's own chunking, as `ladder demo` builds it
    outcomes = []
    for scenario in SCENARIOS:
        expected = {"status": "met", "recommended": scenario.expected, "gap": None, "next_action": "deploy"}
        path = demo_dir() / "decisions" / scenario.config
        outcomes.append(run_one(scenario.key, path, expected, settings, args, progress, kb_s=kb_s))
        kb_s = None  # built once, before the first
    return outcomes


# --- output ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(value) if value else "—"
    return str(value)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def table(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| scenario | expected status/rung/gap/next | actual status/rung/gaps/next | match"
        " | decision wall | kb build |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        want = " / ".join(_cell(o.expected.get(f)) for f in FIELDS)
        if o.decision is None:
            got, match = f"error: {o.error}", "✗"
        else:
            actual = actual_of(o.decision)
            got = " / ".join(_cell(actual[f]) for f in FIELDS)
            match = "✓" if o.matched else "✗ " + ", ".join(f for f in FIELDS if not o.matches[f])
        lines.append(
            f"| {o.scenario} | {want} | {got} | {match} | {_seconds(o.wall_s or None)} | {_seconds(o.kb_s)} |"
        )
    return lines


def summary(outcomes: Sequence[Outcome], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "limit": args.limit,
        "demo": args.demo,
        "all_matched": all(o.matched for o in outcomes),
        "scenarios": [
            {
                "scenario": o.scenario,
                "expected": o.expected,
                "actual": actual_of(o.decision) if o.decision else None,
                "matches": o.matches,
                "matched": o.matched,
                "decision_id": o.decision.decision_id if o.decision else None,
                "model": o.decision.model if o.decision else None,
                "decision_status": o.decision.status if o.decision else None,
                "model_calls": o.decision.model_calls if o.decision else None,
                "wall_s": round(o.wall_s, 2),
                "kb_build_s": None if o.kb_s is None else round(o.kb_s, 2),
                "error": o.error,
            }
            for o in outcomes
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help="datasets/heldout scenarios (default: all)")
    parser.add_argument("--demo", action="store_true", help="the demo's three decisions instead")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "out" / "scenarios"), help="reports and summary.json"
    )
    parser.add_argument(
        "--model", default=None, help="model reference (default: each config's, else the setting)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N items per suite: plumbing only")
    parser.add_argument("--language", choices=("en", "zh"), default=None)
    args = parser.parse_args(argv)
    if args.demo and args.scenarios:
        parser.error("--demo runs the demo's decisions: name no scenario with it")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    try:
        folders = [] if args.demo else heldout_folders(args.scenarios)
    except ValueError as error:
        parser.error(str(error))

    from assistant.settings import load_settings
    from evaluation.decide.text import explain

    flags: dict[str, Any] = {"model": args.model} if args.model else {}
    if args.language:
        flags["language"] = args.language
    settings = load_settings(flags)
    progress = StampedProgress()
    started = time.perf_counter()
    outcomes = (
        demo_runs(settings, args, progress) if args.demo else heldout_runs(folders, settings, args, progress)
    )
    total = time.perf_counter() - started

    print()
    if args.limit:
        print(f"**--limit {args.limit}: plumbing only; the verdicts below mean nothing.**\n")
    print("\n".join(table(outcomes)))
    print(f"\ntotal {total:.1f} s\n")
    for o in outcomes:
        if o.decision is not None:
            print(f"### {o.scenario}\n")
            print("\n".join(f"- {line}" for line in explain(o.decision, args.language)))
            print()
    for o in outcomes:
        if not o.matched:
            wrong = (
                "error: " + str(o.error)
                if o.decision is None
                else ", ".join(f for f in FIELDS if not o.matches[f])
            )
            print(f"MISMATCH {o.scenario}: {wrong}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = summary(outcomes, args)
    data["total_s"] = round(total, 2)
    (out / "summary.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nreports: {out}/<scenario>/, summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

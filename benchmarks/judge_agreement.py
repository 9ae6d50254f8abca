"""How far judges agree with people on Ladder's labelled set (``datasets/judge``).

Scripted judges first (no model): a strong one that answers ragas' prompts as the person would
(``tests.helpers.oracle_judge``), the same judge with half and with all of its replies replaced
by a coin, so the agreement scale is anchored (1.00, in between, about 0.50). Then the stored
checks of real judges (``ladder judge check --judge M`` stores them; they take minutes per
metric on a CPU), read from LADDER_HOME.

    python benchmarks/judge_agreement.py                 # scripted judges + every stored check
    python benchmarks/judge_agreement.py --scripted-only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripted-only", action="store_true")
    args = parser.parse_args()

    from assistant.settings import load_settings
    from evaluation.calibration.check import JUDGED_METRICS, check_judge
    from evaluation.calibration.data import load_set
    from evaluation.calibration.store import list_records
    from tests.helpers.oracle_judge import OracleJudge

    labelled = load_set()
    print(f"labelled set {labelled.name}: {len(labelled.items)} items, sha256 {labelled.sha256[:12]}")
    print()
    print("| judge | " + " | ".join(JUDGED_METRICS) + " |")
    print("|---|" + "---|" * len(JUDGED_METRICS))
    for name, noise in (("scripted strong judge", 0.0), ("half its replies a coin", 0.5), ("a coin", 1.0)):
        result = check_judge(name, OracleJudge(labelled, noise=noise, seed=1), labelled)
        cells = []
        for metric in JUDGED_METRICS:
            a = result.metrics[metric].agreement
            cells.append(f"{a.concordance:.2f} [{a.low:.2f}, {a.high:.2f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.scripted_only:
        return
    for record in list_records(load_settings()):
        if record.get("set_sha256") != labelled.sha256:
            continue
        cells = []
        for metric in JUDGED_METRICS:
            m = (record.get("metrics") or {}).get(metric)
            if not m or m.get("concordance") is None:
                cells.append("not checked")
                continue
            failed = f", {m['failed']} n/a" if m.get("failed") else ""
            value = f"{m['concordance']:.2f} [{m['low']:.2f}, {m['high']:.2f}]"
            cells.append(f"{value}{failed} ({m.get('wall_s', 0):.0f} s)")
        print(f"| {record['judge']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

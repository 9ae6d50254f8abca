"""How well the leakage check's near-duplicate rule separates variants of one question from
different questions (``assistant.leakage``), on data the project did not write.

Two numbers per rule and data set:

- **false positives**: every question is paired with its nearest neighbour among the *other*
  questions of the set (the most grams in common; questions equal after normalisation are one
  question and skipped), and the share of those pairs the check calls one question. Nearest
  neighbours are the hardest different questions there are ("黑鹦嘴鱼主要分布在什么地方？" /
  "疣鹦嘴鱼主要分布在什么地方？"), so this is an upper bound on what a training example pays;
- **catch rate** per variant of each question, seeded: one-character substitution, deletion
  and insertion (letters and CJK characters, never digits: a changed number is another
  question by design), a reordered clause (questions with a comma-like separator only),
  full-width/half-width, a polite prefix ("请问" / "Please tell me: "), and the two paraphrases
  issue 16 found kept by ``finetune synthesize``.

The rule is chosen on CMRC 2018 dev (3,219 questions) and checked on C-Eval val (1,346) and on
the questions of the project's own suites (datasets/suites, datasets/demo/suites,
datasets/heldout/*/suites). The data is read by path, never copied:

    python benchmarks/leakage.py                      # the sweep and the chosen rule
    python benchmarks/leakage.py --data ../shared/data

Writes benchmarks/out/leakage.md and prints the same tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)
from assistant.leakage import EDIT_RATE, FLOOR, EvalQuestion, QuestionIndex  # noqa: E402
from assistant.leakage.text import grams, normalized, overlap  # noqa: E402

RULES = [(rate, floor) for rate in (0.0, 0.05, 0.1) for floor in (0.4, 0.5, 0.7)]
# The paraphrases `finetune synthesize --paraphrase 1` kept in issue 16, with the test items
# they came from (datasets/demo/suites private_facts_test-01 and datasets/suites demo_qa qa-06).
ISSUE_PARAPHRASES = [
    ("近 12 个月累计消费满多少元可以升为青禾会员？", "近 12 个月累计消费满多少元可以升成为青禾会员？"),
    ("未休完的年假最多可以结转多少天？", "未休完年的年假最多可以结转多少天？"),
]
_CJK = re.compile("[\u4e00-\u9fff]")
_SEPARATOR = re.compile("[，,；;：:]")


# ---- data ---------------------------------------------------------------------------------------
def cmrc(data: Path) -> list[str]:
    raw = json.loads((data / "cmrc2018" / "cmrc2018_dev.json").read_text(encoding="utf-8"))
    return [q["question"] for a in raw["data"] for p in a["paragraphs"] for q in p["qas"]]


def ceval(data: Path) -> list[str]:
    out = []
    for path in sorted((data / "ceval" / "val").glob("*_val.csv")):
        with path.open(encoding="utf-8") as handle:
            out += [row["question"] for row in csv.DictReader(handle)]
    return out


def project() -> list[str]:
    from evaluation.suites.source import SuiteFiles

    reader = SuiteFiles()
    paths = [
        *sorted((ROOT / "datasets" / "suites").glob("*.yaml")),
        *sorted((ROOT / "datasets" / "demo" / "suites").glob("*.yaml")),
        *sorted((ROOT / "datasets" / "heldout").glob("*/suites/*.yaml")),
    ]
    return [item.question.user_input for path in paths for item in reader.suite(path)[1]]


def distinct(questions: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for question in questions:
        seen.setdefault(normalized(question), question)
    return [q for key, q in seen.items() if key]


# ---- variants -----------------------------------------------------------------------------------
def _editable(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.isalpha()]


def _pool_char(rng: random.Random, pool: Sequence[str], like: str) -> str:
    same = [c for c in pool if bool(_CJK.match(c)) == bool(_CJK.match(like)) and c != like]
    return rng.choice(same)


def substitute(text: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    spots = _editable(text)
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + _pool_char(rng, pool, text[i]) + text[i + 1 :]


def delete(text: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    spots = _editable(text)
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + text[i + 1 :]


def insert(text: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    spots = _editable(text)
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + _pool_char(rng, pool, text[i]) + text[i:]


def reorder(text: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    body = text.rstrip("？?。. ")
    match = _SEPARATOR.search(body)
    if match is None or not body[: match.start()].strip() or not body[match.end() :].strip():
        return None
    first, second = body[: match.start()].strip(), body[match.end() :].strip()
    return f"{second}{match.group()}{first}{text[len(body) :]}"


_FULL = {ord(c): ord(c) + 0xFEE0 for c in map(chr, range(0x21, 0x7F))}
_HALF_PUNCT = str.maketrans({"？": "?", "，": ",", "：": ":", "；": ";", "（": "(", "）": ")", "。": "."})


def width(text: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    swapped = (
        text.translate(_HALF_PUNCT) if any(c in text for c in "？，：；（）。") else text.translate(_FULL)
    )
    return swapped if swapped != text else None


def polite(text: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    return ("请问" + text) if _CJK.search(text) else ("Please tell me: " + text)


VARIANTS: dict[str, Callable[[str, random.Random, Sequence[str]], str | None]] = {
    "1-char substitution": substitute,
    "1-char deletion": delete,
    "1-char insertion": insert,
    "reordered clause": reorder,
    "full/half width": width,
    "polite prefix": polite,
}


# ---- measures -----------------------------------------------------------------------------------
def nearest_pairs(questions: Sequence[str]) -> list[tuple[str, str]]:
    """Each question with its nearest other question by gram overlap (an inverted index)."""
    gram_sets = [grams(q) for q in questions]
    postings: dict[str, list[int]] = {}
    for number, found in enumerate(gram_sets):
        for gram in found:
            postings.setdefault(gram, []).append(number)
    pairs = []
    for number, found in enumerate(gram_sets):
        shared: dict[int, int] = {}
        for gram in found:
            for other in postings[gram]:
                if other != number:
                    shared[other] = shared.get(other, 0) + 1
        if shared:
            best = max(shared, key=lambda o: (overlap(found, gram_sets[o]), -o))
            pairs.append((questions[number], questions[best]))
    return pairs


def leaks(test: str, probe: str, rate: float, floor: float) -> bool:
    return QuestionIndex([EvalQuestion("s", "1", test)], rate=rate, floor=floor).find([probe]) is not None


def variants(questions: Sequence[str], seed: int) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    pool = sorted({c for q in questions for c in q if c.isalpha()})
    out: dict[str, list[tuple[str, str]]] = {}
    for name, make in VARIANTS.items():
        made = [(q, make(q, rng, pool)) for q in questions]
        keep = name == "full/half width"  # equal once normalised: that is the point
        out[name] = [(q, v) for q, v in made if v is not None and (keep or normalized(v) != normalized(q))]
    out["issue 16 paraphrases"] = list(ISSUE_PARAPHRASES)
    return out


def measure(questions: Sequence[str], rules: Sequence[tuple[float, float]], seed: int) -> dict[str, object]:
    questions = distinct(questions)
    pairs = nearest_pairs(questions)
    made = variants(questions, seed)
    rows = []
    for rate, floor in rules:
        row: dict[str, object] = {"rate": rate, "floor": floor}
        row["false positives"] = sum(leaks(b, a, rate, floor) for a, b in pairs) / len(pairs)
        for name, items in made.items():
            row[name] = sum(leaks(q, v, rate, floor) for q, v in items) / len(items) if items else None
        rows.append(row)
    counts = {name: len(items) for name, items in made.items()}
    return {"questions": len(questions), "pairs": len(pairs), "variants": counts, "rows": rows}


def table(title: str, result: dict[str, object]) -> str:
    rows = result["rows"]
    assert isinstance(rows, list)
    counts = result["variants"]
    assert isinstance(counts, dict)
    names = ["false positives", *counts]
    head = [
        "edit rate",
        "reorder floor",
        *(n if n == "false positives" else f"{n} (n={counts[n]})" for n in names),
    ]
    title = (
        f"### {title}: {result['questions']} distinct questions, {result['pairs']} nearest-neighbour pairs"
    )
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{row['rate']:.2f}", f"{row['floor']:.1f}"]
        cells += ["-" if row[n] is None else f"{row[n]:.1%}" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "leakage.md")
    args = parser.parse_args()
    started = time.perf_counter()
    chosen = [(EDIT_RATE, FLOOR), *((rate, FLOOR) for rate in (0.0, 0.05) if rate != EDIT_RATE)]
    parts = [
        f"Chosen rule: edit rate {EDIT_RATE}, reorder floor {FLOOR} (assistant/leakage/text.py).\n",
        table("CMRC 2018 dev (choose)", measure(cmrc(args.data), RULES, args.seed)),
        table("C-Eval val (check)", measure(ceval(args.data), chosen, args.seed)),
        table("the project's suites (check)", measure(project(), chosen, args.seed)),
    ]
    text = "\n".join(parts) + f"\n({time.perf_counter() - started:.0f} s)\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

"""Build the demo scenario of ``ladder demo``: the Qinghe Goods knowledge base and three question
sets whose right verdicts are known by construction, plus a general-ability suite.

    python datasets/demo/build.py

writes (deterministically: the same script gives the same files, byte for byte)

- ``kb/*.md``: the company's policy, product, after-sales and HR documents (``company.py``);
- ``suites/general_knowledge_{dev,test}``: scenario 1, easy general-knowledge multiple choice,
  scored by log-probability. The base model already knows these: the verdict is *prompting*;
- ``suites/private_facts_{dev,test}``: scenario 2, short questions about the company's invented
  facts (a number, a name, a code). Each answer is in one sentence of the knowledge base and
  nowhere else: prompting must fail and RAG must pass, the verdict is *RAG*;
- ``suites/ticket_routing_{dev,test}`` and ``train/ticket_routing_train.jsonl``: scenario 3,
  routing a customer ticket to one of Qinghe's 16 queues (``QG-<line letter><issue digit>``),
  reply with the code only. Which letter and digit mean what is shown only by examples, so no
  prompt, few examples or document can teach it: the verdict is *fine-tune*;
- ``suites/general_ability``: easy short-answer questions for the forgetting check after fine-tuning.

Every ticket prompt (instruction + ticket) has a character-shingle Jaccard similarity below
``MAX_SIMILARITY`` with every other ticket, training and evaluation alike, so ``ladder finetune
prepare --suite ...`` finds no leak and no near duplicate.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from company import DOCUMENTS, all_facts  # noqa: E402
from tables import (  # noqa: E402
    CAPITALS_EN,
    CAPITALS_ZH,
    CITIES,
    CLOSERS,
    FACTS_EN,
    FACTS_ZH,
    ISSUE_TYPES,
    NUMBER_HINT_EN,
    NUMBER_HINT_ZH,
    OPENERS,
    PRODUCT_LINES,
    TEMPLATES,
)

from finetune.data.dedup import jaccard, shingles  # noqa: E402

SEED = 20250601
MAX_SIMILARITY = 0.8  # exact Jaccard, below the default near-duplicate threshold of 0.85
GENERAL_KNOWLEDGE_PER_SPLIT = 40
GENERAL_ABILITY_ITEMS = 40
ARITHMETIC_ITEMS = 120 - 23 - 30  # fills the three sets up to 120 items
TICKETS_PER_LABEL = {"train": 20, "dev": 2, "test": 2}
ROUTING_INSTRUCTION = "把这张青禾客服工单分派到处理队列，只输出队列编号（格式如 QG-X0）。"
# contains_answer first: a short answer wrapped in a sentence ("3 × 9 = 27.") is still right,
# and the forgetting check reads a general suite's first metric when it has no target metric.
SHORT_ANSWER_METRICS = (
    "metrics:\n  - contains_answer\n  - exact_match\n  - token_f1\nthresholds:\n  contains_answer: 0.7\n"
)
GENERAL_ABILITY_METRICS = "metrics:\n  - contains_answer\n  - token_f1\nthresholds:\n  contains_answer: 0.7\n"
# The answer-format hint goes in the suite's prompt, not in `user_input`: RAG retrieves with
# `user_input`, and hint words that no document contains lower every hit's relevance below the
# "not in the knowledge base" cut-off (with the hint inside, 18 of 29 questions got no answer).
FACT_PROMPT = "{question}\n只回答答案本身，不要解释。"

KB_DIR = HERE / "kb"
SUITES_DIR = HERE / "suites"
TRAIN_DIR = HERE / "train"
FEWSHOT_DIR = HERE / "fewshot"


def labels() -> list[str]:
    return [f"QG-{letter}{digit}" for letter, _ in PRODUCT_LINES.values() for digit in ISSUE_TYPES.values()]


def route(line: str, issue: str) -> str:
    """The queue of a ticket: the whole rule, known only to this script and the training data."""
    return f"QG-{PRODUCT_LINES[line][0]}{ISSUE_TYPES[issue]}"


# ---- writing -----------------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_suite(name: str, description: str, body: str) -> None:
    (SUITES_DIR / f"{name}.yaml").write_text(
        f"# Written by datasets/demo/build.py; edit the script, not this file.\n"
        f"name: {name}\ndescription: {json.dumps(description, ensure_ascii=False)}\n{body}",
        encoding="utf-8",
    )


# ---- scenario 1 and the general-ability suite: easy short-answer questions --------------------
def easy_items(rng: random.Random) -> list[dict[str, Any]]:
    rows = [
        (f"{country}的首都是哪座城市？只回答城市名。", city, "zh", "capital") for country, city in CAPITALS_ZH
    ]
    rows += [(f"What is the capital of {country}? Answer with the city name only.", city, "en", "capital")
             for country, city in CAPITALS_EN]  # fmt: skip
    rows += [(q, a, "zh", "fact") for q, a in FACTS_ZH] + [(q, a, "en", "fact") for q, a in FACTS_EN]
    combos = [(a, op, b) for a in range(2, 10) for b in range(2, 10) for op in "+×" if a <= b]
    for index, (a, op, b) in enumerate(rng.sample(combos, ARITHMETIC_ITEMS)):  # half in each language
        value = a + b if op == "+" else a * b
        zh = index % 2 == 0
        question = (
            f"{a} {op} {b} 等于多少？{NUMBER_HINT_ZH}" if zh else f"What is {a} {op} {b}? {NUMBER_HINT_EN}"
        )
        rows.append((question, str(value), "zh" if zh else "en", "arithmetic"))
    rng.shuffle(rows)
    return [{"user_input": q, "reference": a, "tags": [f"lang:{lang}", kind]} for q, a, lang, kind in rows]


def build_general(rng: random.Random) -> dict[str, int]:
    items = easy_items(rng)
    n = GENERAL_KNOWLEDGE_PER_SPLIT
    parts = {"general_knowledge_dev": items[:n], "general_knowledge_test": items[n : 2 * n],
             "general_ability": items[2 * n : 2 * n + GENERAL_ABILITY_ITEMS]}  # fmt: skip
    counts = {}
    for name, rows in parts.items():
        rows = [{"id": f"{name}-{i + 1:02d}", **row} for i, row in enumerate(rows)]
        write_jsonl(SUITES_DIR / f"{name}.jsonl", rows)
        counts[name] = len(rows)
    for split in ("dev", "test"):
        write_suite(
            f"general_knowledge_{split}",
            f"Demo scenario 1 ({split}): easy general knowledge in Chinese and English, short answers. "
            "Right verdict: prompting.",
            f"kind: qa\ndata: general_knowledge_{split}.jsonl\n{SHORT_ANSWER_METRICS}",
        )
    write_suite(
        "general_ability",
        "Easy Chinese and English short-answer questions for the forgetting check after fine-tuning.",
        f"kind: qa\ndata: general_ability.jsonl\n{GENERAL_ABILITY_METRICS}",
    )
    return counts


# ---- the knowledge base and scenario 2 ---------------------------------------------------------
def build_kb_and_facts(rng: random.Random) -> dict[str, int]:
    KB_DIR.mkdir(parents=True, exist_ok=True)
    for old in KB_DIR.glob("*.md"):
        old.unlink()
    for doc in DOCUMENTS:
        (KB_DIR / doc.filename).write_text(doc.render(), encoding="utf-8")
    rows = []
    for doc, sentence, fact in all_facts():
        if fact.answer.replace(" ", "") not in sentence.text.replace(" ", ""):
            raise ValueError(f"{doc.filename}: answer {fact.answer!r} not in {sentence.text!r}")
        rows.append({"user_input": fact.question,
                     "reference": fact.answer, "reference_contexts": [sentence.text],
                     "tags": [f"lang:{doc.lang}", f"doc:{doc.filename.removesuffix('.md')}"]})  # fmt: skip
    rng.shuffle(rows)
    half = len(rows) // 2
    counts = {}
    for split, part in (("dev", rows[:half]), ("test", rows[half:])):
        name = f"private_facts_{split}"
        write_jsonl(
            SUITES_DIR / f"{name}.jsonl", [{"id": f"{name}-{i + 1:02d}", **r} for i, r in enumerate(part)]
        )
        counts[name] = len(part)
        write_suite(
            name,
            f"Demo scenario 2 ({split}): Qinghe Goods' private facts, short answers. Right verdict: RAG "
            "(knowledge base datasets/demo/kb).",
            f"kind: qa\ndata: {name}.jsonl\nprompt: {json.dumps(FACT_PROMPT, ensure_ascii=False)}\nmetrics:\n"
            "  - token_f1\n  - contains_answer\n  - exact_match\n  - hit_at_k: {k: 4}\nthresholds:\n  token_f1: 0.5\n",
        )
    return counts


# ---- scenario 3: ticket routing ----------------------------------------------------------------
def ticket(line: str, issue: str, rng: random.Random) -> str:
    product = rng.choice(PRODUCT_LINES[line][1])
    body = rng.choice(TEMPLATES[issue]).format(
        p=product, n=str(rng.randint(100000, 999999)), d=rng.randint(2, 15), city=rng.choice(CITIES)
    )
    return rng.choice(OPENERS) + body + rng.choice(CLOSERS)


def tags(row: dict[str, Any]) -> list[str]:
    return [f"label:{row['label']}", f"line:{row['line']}", f"issue:{row['issue']}"]


def build_routing(rng: random.Random) -> dict[str, int]:
    kept_grams: list[set[str]] = []
    seen: set[str] = set()
    split_rows: dict[str, list[dict[str, Any]]] = {"test": [], "dev": [], "train": []}
    for split in ("test", "dev", "train"):  # held-out items first: training tickets must avoid them
        for line in PRODUCT_LINES:
            for issue in ISSUE_TYPES:
                kept = 0
                for _attempt in range(400):
                    if kept == TICKETS_PER_LABEL[split]:
                        break
                    text = ticket(line, issue, rng)
                    prompt = f"{ROUTING_INSTRUCTION}\n\n{text}"
                    grams = shingles(prompt)
                    if text in seen or any(jaccard(grams, other) >= MAX_SIMILARITY for other in kept_grams):
                        continue
                    seen.add(text)
                    kept_grams.append(grams)
                    split_rows[split].append(
                        {"text": text, "label": route(line, issue), "line": line, "issue": issue}
                    )
                    kept += 1
                if kept < TICKETS_PER_LABEL[split]:
                    raise RuntimeError(f"only {kept} distinct {split} tickets for {line}/{issue}")
    counts = {}
    for split in ("dev", "test"):
        rows = split_rows[split]
        rng.shuffle(rows)
        name = f"ticket_routing_{split}"
        write_jsonl(SUITES_DIR / f"{name}.jsonl", [
            {"id": f"{name}-{i + 1:02d}", "user_input": f"{ROUTING_INSTRUCTION}\n\n{r['text']}",
             "reference": r["label"], "tags": tags(r)}
            for i, r in enumerate(rows)
        ])  # fmt: skip
        counts[name] = len(rows)
        write_suite(
            name,
            f"Demo scenario 3 ({split}): route a Qinghe support ticket to one of 16 queues, reply with the "
            "queue code only. Right verdict: fine-tune (datasets/demo/train/ticket_routing_train.jsonl).",
            f"kind: qa\ndata: {name}.jsonl\nmetrics:\n  - exact_match\nthresholds:\n  exact_match: 0.8\n",
        )
    train = split_rows["train"]
    rng.shuffle(train)
    write_jsonl(TRAIN_DIR / "ticket_routing_train.jsonl", [
        {"instruction": ROUTING_INSTRUCTION, "input": r["text"], "output": r["label"],
         "tags": tags(r)}
        for r in train
    ])  # fmt: skip
    counts["ticket_routing_train"] = len(train)
    counts.update(build_fewshot(read_jsonl(TRAIN_DIR / "ticket_routing_train.jsonl")))
    return counts


# ---- few-shot pools ----------------------------------------------------------------------------
SHORT_ANSWER_EXAMPLES = [  # in no suite: they show the short answer format, nothing else
    ("美国的首都是哪座城市？只回答城市名。", "华盛顿"),
    ("What is the capital of Canada? Answer with the city name only.", "Ottawa"),
    ("一个星期里周六之后是星期几？只用一个词回答。", "星期日"),
    ("How many wheels does a bicycle have? Answer with a number only.", "2"),
    ("10 - 3 等于多少？只回答数字。", "7"),
    ("What is the opposite of day? Answer with one word only.", "Night"),
]
ROUTING_EXAMPLES = 8  # a handful: half of the 16 queues


def build_fewshot(train: list[dict[str, Any]]) -> dict[str, int]:
    """Few-shot pools (``user_input``/``reference``): short answers for scenarios 1 and 2, and
    ``ROUTING_EXAMPLES`` training tickets with different queues for scenario 3."""
    write_jsonl(FEWSHOT_DIR / "short_answers.jsonl",
                [{"user_input": q, "reference": a} for q, a in SHORT_ANSWER_EXAMPLES])  # fmt: skip
    picked: dict[str, dict[str, Any]] = {}
    for row in train:
        if len(picked) < ROUTING_EXAMPLES and row["output"] not in picked:
            picked[row["output"]] = {
                "user_input": f"{row['instruction']}\n\n{row['input']}",
                "reference": row["output"],
            }
    write_jsonl(FEWSHOT_DIR / "ticket_routing.jsonl", list(picked.values()))
    return {"fewshot_short_answers": len(SHORT_ANSWER_EXAMPLES), "fewshot_ticket_routing": len(picked)}


def build() -> dict[str, int]:
    SUITES_DIR.mkdir(parents=True, exist_ok=True)
    counts = build_general(random.Random(SEED))
    counts.update(build_kb_and_facts(random.Random(SEED + 1)))
    counts.update(build_routing(random.Random(SEED + 2)))
    return counts


if __name__ == "__main__":
    for name, count in build().items():
        print(f"{name}: {count}")

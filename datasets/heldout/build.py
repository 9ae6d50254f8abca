"""Build the held-out decision scenarios: three cases the project never tunes on, each with a
right verdict known by construction and drawn from a published finding.

    python datasets/heldout/build.py

writes (deterministically: the same script gives the same files, byte for byte), for each
scenario folder ``port_facts/``, ``device_calls/`` and ``cert_exam/``:

- ``kb/``: the documents of the knowledge base ``heldout-<scenario>`` (none for cert_exam);
- ``suites/<scenario>_{dev,test}.{yaml,jsonl}``: 30 + 30 held-out items;
- ``fewshot.jsonl``: the few-shot pool; ``train.jsonl``: raw training data (Alpaca, tagged);
- ``decision.yaml``: the decision a new user would write (default rungs, no tuning);
- ``expected.yaml``: the verdict the ladder should reach, decided before anything ran.

The facts come from ``port_tables.py``, ``building_tables.py`` and ``exam_tables.py``. Every
training prompt has a character-shingle Jaccard similarity below ``MAX_SIMILARITY`` with every
held-out question, so no training example leaks (README.md says what else is checked).
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

import building_tables as building  # noqa: E402
import exam_tables as exam  # noqa: E402
import port_tables as port  # noqa: E402

from finetune.data.dedup import DEFAULT_THRESHOLD, jaccard, numbers, shingles  # noqa: E402

SEED = 20261206
MAX_SIMILARITY = 0.8  # exact Jaccard, below the default near-duplicate threshold of 0.85
PER_SPLIT = 30
HEADER = "# Written by datasets/heldout/build.py; edit the script, not this file.\n"
FACT_PROMPT = "{question}\n只回答答案本身，不要解释。"
FACT_HINT = FACT_PROMPT.removeprefix("{question}")
PORT_TRAIN = 150
DEVICE_TRAIN = 240
EXAM_TRAIN = 60
LETTERS = "ABCD"
TERMINALS = ("北港区", "东港区", "南港区")


# ---- writing -----------------------------------------------------------------------------------
def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def write_suite(folder: Path, name: str, description: str, body: str) -> None:
    write_text(
        folder / "suites" / f"{name}.yaml",
        f"{HEADER}name: {name}\ndescription: {quoted(description)}\ndata: {name}.jsonl\n{body}",
    )


def write_decision(folder: Path, comment: str, lines: list[str]) -> None:
    write_text(
        folder / "decision.yaml",
        HEADER + "".join(f"# {c}\n" for c in comment.split("\n")) + "\n".join(lines) + "\n",
    )


def write_expected(folder: Path, **values: str | None) -> None:
    lines = [f"{key}: {'null' if value is None else quoted(value) if key == 'source' else value}"
             for key, value in values.items()]  # fmt: skip
    write_text(folder / "expected.yaml", HEADER + "\n".join(lines) + "\n")


def clear(folder: Path, suffixes: tuple[str, ...]) -> None:
    """Remove files this script wrote before (a renamed document must not linger)."""
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_file() and old.suffix in suffixes:
                old.unlink()


class Distinct:
    """Keeps texts whose shingles stay below ``MAX_SIMILARITY`` with every text kept before."""

    def __init__(self) -> None:
        self.grams: list[set[str]] = []
        self.seen: set[str] = set()

    def add(self, *texts: str) -> bool:
        """Keep ``texts`` (one item's probes) when every one is distinct; all or none."""
        grams = [shingles(t) for t in texts]
        if any(t in self.seen for t in texts):
            return False
        if any(jaccard(g, other) >= MAX_SIMILARITY for g in grams for other in self.grams):
            return False
        self.seen.update(texts)
        self.grams.extend(grams)
        return True


def split_rows(name: str, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    parts = {"dev": rows[:PER_SPLIT], "test": rows[PER_SPLIT : 2 * PER_SPLIT]}
    return {split: [{"id": f"{name}_{split}-{i + 1:02d}", **r} for i, r in enumerate(part)]
            for split, part in parts.items()}  # fmt: skip


# ---- scenario 1: port_facts ------------------------------------------------------------------
def render_document(doc: port.Document) -> str:
    if doc.filename.endswith(".jsonl"):
        records = [
            {"id": f"faq-{i + 1:02d}", "title": heading, "text": "".join(s.text for s in sentences)}
            for i, (heading, sentences) in enumerate(doc.sections)
        ]
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    lines = [doc.title, "=" * 8, ""] if doc.filename.endswith(".txt") else [f"# {doc.title}", ""]
    for heading, sentences in doc.sections:
        if heading:
            lines += [f"## {heading}", ""]
        lines += ["".join(s.text for s in sentences), ""]
    return "\n".join(lines)


def build_port(rng: random.Random) -> dict[str, int]:
    folder = HERE / "port_facts"
    clear(folder / "kb", (".md", ".txt", ".jsonl"))
    facts = []
    for doc in port.DOCUMENTS:
        write_text(folder / "kb" / doc.filename, render_document(doc))
        for sentence in doc.sentences():
            for fact in sentence.facts:
                if fact.answer not in sentence.text:
                    raise ValueError(f"{doc.filename}: answer {fact.answer!r} not in {sentence.text!r}")
                facts.append((doc, sentence, fact))
    if len(facts) != 2 * PER_SPLIT:
        raise ValueError(f"port_facts needs {2 * PER_SPLIT} facts, the tables have {len(facts)}")
    # The three terminals' versions of one question are near duplicates of each other on purpose
    # (the distractors): a family stays in one split, or the dev/test overlap check would stop it.
    families: dict[str, list[dict[str, Any]]] = {}
    for doc, sentence, fact in facts:
        key = fact.question
        for terminal in TERMINALS:
            key = key.replace(terminal, "*")
        families.setdefault(key, []).append({"user_input": fact.question, "reference": fact.answer,
                                             "reference_contexts": [sentence.text],
                                             "tags": [f"doc:{doc.filename}"]})  # fmt: skip
    groups = list(families.values())
    rng.shuffle(groups)
    distinct = Distinct()
    dev: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for group in groups:
        if not distinct.add(*(row["user_input"] for row in group)):
            raise ValueError(
                f"port_facts: {group[0]['user_input']!r} is a near duplicate of another question"
            )
        (dev if len(dev) + len(group) <= PER_SPLIT else test).extend(group)
    rng.shuffle(dev)
    rng.shuffle(test)
    rows = dev + test
    counts = {}
    for split, part in split_rows("port_facts", rows).items():
        name = f"port_facts_{split}"
        write_jsonl(folder / "suites" / f"{name}.jsonl", part)
        counts[name] = len(part)
        write_suite(folder, name,
                    f"Held-out scenario port_facts ({split}): invented facts of 云栖湾港务集团, "
                    "short answers. Right verdict: RAG (knowledge base heldout-port_facts).",
                    f"kind: qa\nprompt: {quoted(FACT_PROMPT)}\nmetrics:\n  - token_f1\n  - contains_answer\n"
                    "  - exact_match\n  - hit_at_k: {k: 4}\nthresholds:\n  contains_answer: 0.6\n",
                    )  # fmt: skip
    candidates = [(frame.format(topic=f.topic), f, d) for d, _, f in facts for frame in port.TRAIN_FRAMES]
    rng.shuffle(candidates)
    train = []
    for question, fact, doc in candidates:
        if len(train) < PORT_TRAIN and distinct.add(question):
            train.append({"instruction": question + FACT_HINT, "input": "", "output": fact.answer,
                          "tags": [f"doc:{doc.filename}"]})  # fmt: skip
    if len(train) < PORT_TRAIN:
        raise RuntimeError(f"port_facts: only {len(train)} distinct training questions")
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "fewshot.jsonl", [{"user_input": q, "reference": a} for q, a in port.FEWSHOT])
    counts.update(port_facts_train=len(train), port_facts_fewshot=len(port.FEWSHOT))
    write_decision(
        folder,
        "Held-out scenario port_facts: questions on 云栖湾港务集团's invented facts, each stated once\n"
        "in its knowledge base. Written as a new user would: default rungs, no tuning.",
        ["suites:", "  dev: suites/port_facts_dev.yaml", "  test: suites/port_facts_test.yaml",
         "targets:", '  contains_answer: ">= 0.6"', "kb: heldout-port_facts", "examples: fewshot.jsonl",
         "finetune:", "  raw: [train.jsonl]", "no_judge: true", "allow_finetune: true"],
    )  # fmt: skip
    write_expected(folder, status="met", recommended="rag", gap=None, next_action="deploy",
                   source="Ovadia et al. 2024, Fine-Tuning or Retrieval? Comparing Knowledge Injection in "
                   "LLMs (EMNLP 2024): for knowledge new to the model, RAG outperforms unsupervised "
                   "fine-tuning")  # fmt: skip
    return counts


# ---- scenario 2: device_calls ----------------------------------------------------------------
def request(function: str, zone: str, rng: random.Random) -> tuple[str, int | None]:
    parameter, values, templates = building.FUNCTIONS[function]
    value = rng.choice(values) if parameter else None
    room = rng.choice(building.ZONES[zone])
    template = rng.choice(templates)
    openers = building.OPENERS if template.startswith(building.VERB_STARTS) else building.GREETINGS
    text = rng.choice(openers) + template.format(room=room, v=value)
    return text + rng.choice(building.CLOSERS), value


def device_rows(
    count: int, distinct: Distinct, full: dict[tuple[str, ...], list[set[str]]], rng: random.Random
) -> list[dict[str, Any]]:
    """``count`` requests cycling over every (zone, function) pair. Each request is distinct from
    every request before (Jaccard below ``MAX_SIMILARITY``: what the leakage check compares),
    and each whole example (instruction, request, call) below ``DEFAULT_THRESHOLD`` from every
    whole example with the same numbers (what ``ladder finetune prepare`` drops as a near
    duplicate)."""
    pairs = [(zone, function) for zone in building.ZONES for function in building.FUNCTIONS]
    rng.shuffle(pairs)
    rows = []
    for index in range(count):
        zone, function = pairs[index % len(pairs)]
        for _attempt in range(400):
            text, value = request(function, zone, rng)
            answer = building.call(function, zone, value)
            whole = f"{building.INSTRUCTION}\n\n{text}\n{answer}"
            grams, tag = shingles(whole), numbers(whole)
            if any(jaccard(grams, other) >= DEFAULT_THRESHOLD for other in full.get(tag, [])):
                continue
            if distinct.add(text):
                full.setdefault(tag, []).append(grams)
                break
        else:
            raise RuntimeError(f"device_calls: no distinct request left for {zone}/{function}")
        rows.append({"text": text, "call": answer, "tags": [f"zone:{zone}", f"function:{function}"]})
    return rows


def build_device(rng: random.Random) -> dict[str, int]:
    folder = HERE / "device_calls"
    clear(folder / "kb", (".md",))
    for filename, text in building.DOCUMENTS.items():
        write_text(folder / "kb" / filename, text)
    distinct, full = Distinct(), {}
    held_out = device_rows(2 * PER_SPLIT, distinct, full, rng)  # held-out first: training must avoid them
    train = device_rows(DEVICE_TRAIN, distinct, full, rng)
    rng.shuffle(held_out)
    rng.shuffle(train)
    rows = [{"user_input": r["text"], "reference": r["call"], "tags": r["tags"]} for r in held_out]
    counts = {}
    for split, part in split_rows("device_calls", rows).items():
        name = f"device_calls_{split}"
        write_jsonl(folder / "suites" / f"{name}.jsonl", part)
        counts[name] = len(part)
        write_suite(folder, name,
                    f"Held-out scenario device_calls ({split}): a building request in Chinese becomes "
                    "one call in a strict syntax. Right verdict: fine-tune (train.jsonl).",
                    f"kind: qa\nprompt: {quoted(building.INSTRUCTION + chr(10) * 2 + '{question}')}\n"
                    "metrics:\n  - exact_match\nthresholds:\n  exact_match: 0.8\n")  # fmt: skip
    write_jsonl(folder / "train.jsonl", [
        {"instruction": building.INSTRUCTION, "input": r["text"], "output": r["call"], "tags": r["tags"]}
        for r in train
    ])  # fmt: skip
    pool, covered = [], set()
    for r in train:  # one example per (zone, function) pair, from the few zones only
        key = tuple(r["tags"])
        few_zone = r["tags"][0].removeprefix("zone:") in building.FEWSHOT_ZONES
        if len(pool) < building.FEWSHOT_SIZE and few_zone and key not in covered:
            covered.add(key)
            pool.append({"user_input": f"{building.INSTRUCTION}\n\n{r['text']}", "reference": r["call"]})
    write_jsonl(folder / "fewshot.jsonl", pool)
    counts.update(device_calls_train=len(train), device_calls_fewshot=len(pool))
    write_decision(
        folder,
        "Held-out scenario device_calls: a building request becomes one call in a strict syntax; the\n"
        "zone codes are taught by the training examples only. Written as a new user would: default\n"
        "rungs, no tuning.",
        ["suites:", "  dev: suites/device_calls_dev.yaml", "  test: suites/device_calls_test.yaml",
         "targets:", '  exact_match: ">= 0.8"', "kb: heldout-device_calls", "examples: fewshot.jsonl",
         "finetune:", "  raw: [train.jsonl]", "no_judge: true", "allow_finetune: true"],
    )  # fmt: skip
    write_expected(folder, status="met", recommended="finetune", gap=None, next_action="deploy",
                   source="Patil et al. 2023, Gorilla: Large Language Model Connected with Massive APIs; "
                   "Zhang et al. 2024, RAFT: Adapting Language Model to Domain Specific RAG: fine-tuning "
                   "teaches an exact call syntax that prompting and retrieval of unrelated documents "
                   "do not")  # fmt: skip
    return counts


# ---- scenario 3: cert_exam -------------------------------------------------------------------
def exam_cells(rng: random.Random) -> list[dict[str, Any]]:
    """Every (equipment, requirement) cell with its value and its article number."""
    articles = rng.sample(range(8, 99), len(exam.EQUIPMENT) * len(exam.REQUIREMENTS))
    cells = []
    for requirement, (unit, values, what) in exam.REQUIREMENTS.items():
        drawn = rng.sample(values, len(exam.EQUIPMENT))
        for equip, value in zip(exam.EQUIPMENT, drawn, strict=True):
            cells.append({"equip": equip, "requirement": requirement, "what": what, "unit": unit,
                          "value": value, "values": values, "article": articles[len(cells)]})  # fmt: skip
    return cells


def exam_question(cell: dict[str, Any], stem: str, rng: random.Random) -> tuple[str, str, list[str]]:
    """(question, right option, three wrong options)."""
    question = stem.format(reg=exam.REGULATION, equip=cell["equip"], what=cell["what"])
    if stem in exam.ARTICLE_STEMS:
        wrong = rng.sample([a for a in range(8, 99) if a != cell["article"]], 3)
        return question, f"第 {cell['article']} 条", [f"第 {a} 条" for a in wrong]
    wrong = rng.sample([v for v in cell["values"] if v != cell["value"]], 3)
    return question, f"{cell['value']} {cell['unit']}", [f"{v} {cell['unit']}" for v in wrong]


def options_text(options: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))


def build_exam(rng: random.Random) -> dict[str, int]:
    folder = HERE / "cert_exam"
    exam_prompt = "{question}\n{options}\n" + exam.INSTRUCTION
    candidates = [
        (cell, stem) for cell in exam_cells(rng) for stem in (*exam.VALUE_STEMS, *exam.ARTICLE_STEMS)
    ]
    rng.shuffle(candidates)
    distinct = Distinct()
    needed = 2 * PER_SPLIT + EXAM_TRAIN + exam.FEWSHOT_SIZE
    items = []
    for cell, stem in candidates:
        if len(items) == needed:
            break
        question, right, wrong = exam_question(cell, stem, rng)
        if distinct.add(question):
            items.append(
                (question, right, wrong, [f"equipment:{cell['equip']}", f"rule:{cell['requirement']}"])
            )
    if len(items) < needed:
        raise RuntimeError(f"cert_exam: only {len(items)} distinct questions, {needed} needed")

    def labelled(part: list[tuple[str, str, list[str], list[str]]]) -> list[dict[str, Any]]:
        """The right option at A, B, C, D in turn (balanced), then the items shuffled."""
        rows = []
        for index, (question, right, wrong, tags) in enumerate(part):
            label = index % len(LETTERS)
            options = [*wrong[:label], right, *wrong[label:]]
            rows.append({"question": question, "options": options, "label": LETTERS[label], "tags": tags})
        rng.shuffle(rows)
        return rows

    parts = {"dev": labelled(items[:PER_SPLIT]), "test": labelled(items[PER_SPLIT : 2 * PER_SPLIT])}
    rest = labelled(items[2 * PER_SPLIT :])
    counts = {}
    for split, part in parts.items():
        name = f"cert_exam_{split}"
        write_jsonl(
            folder / "suites" / f"{name}.jsonl",
            [{"id": f"{name}-{i + 1:02d}", **r} for i, r in enumerate(part)],
        )
        counts[name] = len(part)
        write_suite(folder, name,
                    f"Held-out scenario cert_exam ({split}): 4-option questions on an invented regulation, "
                    f"{exam.REGULATION}. Right verdict: none meets (the model does not know it).",
                    f"kind: mcq\nprompt: {quoted(exam_prompt)}\n"
                    "metrics:\n  - accuracy\nthresholds:\n  accuracy: 0.6\n")  # fmt: skip

    def prompt(row: dict[str, Any]) -> str:
        return f"{row['question']}\n{options_text(row['options'])}\n{exam.INSTRUCTION}"

    train, pool = rest[:EXAM_TRAIN], rest[EXAM_TRAIN:]
    write_jsonl(folder / "train.jsonl", [{"instruction": prompt(r), "input": "", "output": r["label"],
                                          "tags": r["tags"]} for r in train])  # fmt: skip
    write_jsonl(folder / "fewshot.jsonl", [{"user_input": prompt(r), "reference": r["label"]} for r in pool])
    counts.update(cert_exam_train=len(train), cert_exam_fewshot=len(pool))
    write_decision(
        folder,
        "Held-out scenario cert_exam: an exam on an invented regulation, above what the model knows,\n"
        "with little training data and no knowledge source. Written as a new user would: default\n"
        "rungs, no tuning.",
        ["suites:", "  dev: suites/cert_exam_dev.yaml", "  test: suites/cert_exam_test.yaml",
         "targets:", '  accuracy: ">= 0.6"', "examples: fewshot.jsonl",
         "finetune:", "  raw: [train.jsonl]", "no_judge: true", "allow_finetune: true"],
    )  # fmt: skip
    write_expected(folder, status="not_met", recommended=None, gap="does_not_know",
                   next_action="larger_model_or_knowledge_source",
                   source="Kandpal et al. 2023, Large Language Models Struggle to Learn Long-Tail Knowledge; "
                   "Ovadia et al. 2024: knowledge absent from pre-training is not recovered by "
                   "prompting, and 60 examples are too few to fine-tune it in")  # fmt: skip
    return counts


def build() -> dict[str, int]:
    counts = build_port(random.Random(SEED))
    counts.update(build_device(random.Random(SEED + 1)))
    counts.update(build_exam(random.Random(SEED + 2)))
    return counts


if __name__ == "__main__":
    for name, count in build().items():
        print(f"{name}: {count}")

"""The demo scenario's data (datasets/demo): deterministic, loadable, leak-free, right by construction."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.metrics.lexical import tokenize
from evaluation.suites.spec import load_suite
from finetune.data.dedup import DEFAULT_THRESHOLD, jaccard, shingles

DEMO = Path(__file__).resolve().parents[1] / "datasets" / "demo"
SUITES = DEMO / "suites"
TRAIN = DEMO / "train" / "ticket_routing_train.jsonl"
SPLIT_SUITES = ("general_knowledge", "private_facts", "ticket_routing")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in {".md", ".jsonl", ".yaml"} and "__pycache__" not in p.parts
    }


def test_build_is_deterministic_and_matches_the_committed_files(tmp_path: Path) -> None:
    copy = tmp_path / "datasets" / "demo"
    copy.mkdir(parents=True)
    for name in ("build.py", "company.py", "tables.py"):
        shutil.copy(DEMO / name, copy / name)
    # build.py puts the repository root on sys.path through its own location; link finetune in.
    (tmp_path / "finetune").symlink_to(DEMO.parents[1] / "finetune")
    (tmp_path / "assistant").symlink_to(DEMO.parents[1] / "assistant")
    for _ in range(2):
        subprocess.run([sys.executable, str(copy / "build.py")], check=True, capture_output=True)
    built = digests(copy)
    committed = {
        k: v
        for k, v in digests(DEMO).items()
        if k in built or k.startswith(("kb/", "suites/", "train/", "fewshot/"))
    }
    assert built == committed


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_suite_loads(path: Path) -> None:
    suite = load_suite(path)
    assert len(suite) >= 24
    assert suite.spec.thresholds
    assert all(item.question.reference for item in suite.items)


@pytest.mark.parametrize("scenario", SPLIT_SUITES)
def test_dev_and_test_do_not_overlap(scenario: str) -> None:
    dev = {r["user_input"] for r in rows(SUITES / f"{scenario}_dev.jsonl")}
    test = {r["user_input"] for r in rows(SUITES / f"{scenario}_test.jsonl")}
    assert dev and test and not dev & test


def test_general_ability_is_disjoint_from_scenario_one() -> None:
    general = {r["user_input"] for r in rows(SUITES / "general_ability.jsonl")}
    for split in ("dev", "test"):
        assert not general & {r["user_input"] for r in rows(SUITES / f"general_knowledge_{split}.jsonl")}


def test_arithmetic_references_are_right() -> None:
    for path in SUITES.glob("general_*.jsonl"):
        for row in rows(path):
            if "arithmetic" in row["tags"]:
                match = re.search(r"(\d) ([+×]) (\d)", row["user_input"])
                assert match, row
                a, op, b = int(match[1]), match[2], int(match[3])
                assert row["reference"] == str(a + b if op == "+" else a * b), row


def test_private_facts_are_in_the_knowledge_base_once() -> None:
    kb_text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((DEMO / "kb").glob("*.md")))
    kb_tokens = tokenize(kb_text)
    facts = rows(SUITES / "private_facts_dev.jsonl") + rows(SUITES / "private_facts_test.jsonl")
    assert len({f["user_input"] for f in facts}) == len(facts)
    for fact in facts:
        (context,) = fact["reference_contexts"]
        assert context in kb_text
        answer = tokenize(fact["reference"])
        assert any(tokenize(context)[i : i + len(answer)] == answer for i in range(len(tokenize(context))))
        assert any(kb_tokens[i : i + len(answer)] == answer for i in range(len(kb_tokens)))


def test_routing_labels_follow_the_rule_and_are_never_stated() -> None:
    sys.path.insert(0, str(DEMO))
    try:
        from tables import ISSUE_TYPES, PRODUCT_LINES
    finally:
        sys.path.remove(str(DEMO))
    letters = {line: code for line, (code, _) in PRODUCT_LINES.items()}
    labels = {f"QG-{letters[line]}{digit}" for line in PRODUCT_LINES for digit in ISSUE_TYPES.values()}
    assert len(labels) == 16
    train = rows(TRAIN)
    held_out = rows(SUITES / "ticket_routing_dev.jsonl") + rows(SUITES / "ticket_routing_test.jsonl")
    examples = [(r["input"], r["output"], r["tags"]) for r in train]
    examples += [(r["user_input"], r["reference"], r["tags"]) for r in held_out]
    for text, label, tags in examples:
        line = next(t for t in tags if t.startswith("line:")).removeprefix("line:")
        issue = next(t for t in tags if t.startswith("issue:")).removeprefix("issue:")
        assert label == f"QG-{letters[line]}{ISSUE_TYPES[issue]}"
        assert any(product in text for product in PRODUCT_LINES[line][1])
    assert {label for _, label, _ in examples} == labels
    # The mapping is taught by examples only: no document and no instruction names a queue.
    kb_text = "".join(p.read_text(encoding="utf-8") for p in (DEMO / "kb").glob("*.md"))
    assert not any(label in kb_text for label in labels)
    assert not any(label in train[0]["instruction"] for label in labels)


def test_training_tickets_do_not_leak_into_held_out_suites() -> None:
    held_out = rows(SUITES / "ticket_routing_dev.jsonl") + rows(SUITES / "ticket_routing_test.jsonl")
    held_grams = [shingles(r["user_input"]) for r in held_out]
    train = rows(TRAIN)
    assert len(train) >= 300
    for row in train:
        grams = shingles(f"{row['instruction']}\n\n{row['input']}")
        assert max(jaccard(grams, other) for other in held_grams) < DEFAULT_THRESHOLD


def test_fewshot_pools_hold_no_evaluation_item_and_few_queues() -> None:
    evaluated = {r["user_input"] for p in SUITES.glob("*.jsonl") for r in rows(p)}
    short = rows(DEMO / "fewshot" / "short_answers.jsonl")
    routing = rows(DEMO / "fewshot" / "ticket_routing.jsonl")
    assert short and routing
    assert not evaluated & {r["user_input"] for r in short + routing}
    train = {f"{r['instruction']}\n\n{r['input']}" for r in rows(TRAIN)}
    assert {r["user_input"] for r in routing} <= train
    assert len({r["reference"] for r in routing}) == len(routing) <= 8

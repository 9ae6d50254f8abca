"""Exact and near-duplicate detection (MinHash + LSH, exact Jaccard), and the leakage check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.suites.source import SuiteFiles
from finetune.data.dedup import (
    Deduplicator,
    EvalQuestion,
    LeakageChecker,
    MinHashIndex,
    jaccard,
    load_eval_questions,
    lsh_bands,
    shingles,
)
from finetune.data.load import Example

EN = (
    "Customers may return any physical product within thirty days of delivery for a full refund of the price."
)
ZH = "员工入职满一年后，每年享有十天带薪年假；入职满五年后，每年享有十五天带薪年假，未休完的最多结转五天。"


def chat(user: str, reply: str = "ok", source: str = "f:1") -> Example:
    return Example(
        [{"role": "user", "content": user}, {"role": "assistant", "content": reply}], source=source
    )


def test_shingles_are_per_character_and_sized_by_script() -> None:
    assert shingles("年假十天") == {"年假十", "假十天"}  # 3-grams for Chinese
    assert shingles("Hello, World") == {"hello", "ello ", "llo w", "lo wo", "o wor", " worl", "world"}
    assert shingles("") == set()
    assert jaccard(shingles(ZH), shingles(ZH.replace("十天", "十二天"))) > 0.85


def test_lsh_bands_catch_pairs_at_the_threshold() -> None:
    for threshold in (0.5, 0.7, 0.85, 0.95):
        bands, rows = lsh_bands(threshold)
        assert bands * rows <= 128
        assert 1 - (1 - threshold**rows) ** bands >= 0.99


def test_minhash_index_finds_near_duplicates_with_their_exact_similarity() -> None:
    index = MinHashIndex(0.8)
    index.add("en", shingles(EN))
    index.add("zh", shingles(ZH))
    variant = EN.replace("thirty", "30")
    found = index.similar(shingles(variant))
    assert found is not None and found[0] == "en"
    assert found[1] == pytest.approx(jaccard(shingles(EN), shingles(variant)))
    assert (
        index.similar(shingles("Shipping is free for orders over two hundred yuan, said the manager."))
        is None
    )


def test_exact_then_near_dedup_keeps_the_first_and_names_what_it_matched() -> None:
    examples = [
        chat(EN, source="a:1"),
        chat(EN.upper() + "!!", source="a:2"),  # same after normalisation
        chat(EN.replace("thirty", "forty"), source="a:3"),  # near duplicate
        chat(ZH, source="a:4"),
        chat(ZH.replace("十五天", "二十天"), source="a:5"),  # near duplicate, Chinese
        chat("A completely different question about the canteen opening hours?", source="a:6"),
    ]
    result = Deduplicator(0.85).run(examples)
    assert [e.source for e in result.kept] == ["a:1", "a:4", "a:6"]
    assert result.exact == [{"dropped": "a:2", "kept": "a:1"}]
    assert [(p["dropped"], p["kept"]) for p in result.near] == [("a:3", "a:1"), ("a:5", "a:4")]
    assert all(0.85 <= p["similarity"] < 1 for p in result.near)


def test_the_threshold_is_configurable() -> None:
    pair = [chat(EN, source="a:1"), chat(EN.replace("thirty days", "two weeks"), source="a:2")]
    similarity = jaccard(shingles(pair[0].full_text), shingles(pair[1].full_text))
    assert 0.6 < similarity < 0.95
    assert len(Deduplicator(similarity - 0.01).run(pair).kept) == 1
    assert len(Deduplicator(similarity + 0.01).run(pair).kept) == 2
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Deduplicator(1.5)


def test_a_second_run_dedups_against_what_the_first_kept() -> None:
    dedup = Deduplicator()
    dedup.run([chat(EN, source="domain:1")])
    result = dedup.run([chat(EN, source="general:1"), chat(ZH, source="general:2")])
    assert [e.source for e in result.kept] == ["general:2"]
    assert result.exact == [{"dropped": "general:1", "kept": "domain:1"}]


# ---- leakage ----------------------------------------------------------------------------------
QUESTIONS = [
    EvalQuestion("handbook", "qa-01", "Within how many days of delivery can a customer return a product?"),
    EvalQuestion("exam", "zh-03", ZH),
]


def test_leakage_exact_near_and_alpaca_input() -> None:
    checker = LeakageChecker(QUESTIONS)
    exact = chat("within how many days of delivery can a customer return a product", source="t:1")
    near = chat(ZH.replace("十天", "十二天"), source="t:2")
    boilerplate = "Answer the question below briefly and politely, in the customer's own language, please."
    via_input = Example(
        [
            {"role": "user", "content": f"{boilerplate}\n\n{QUESTIONS[0].text}"},
            {"role": "assistant", "content": "30"},
        ],
        source="t:3",
        extra_probes=[QUESTIONS[0].text],
    )
    clean = chat("How do I reset my password?", source="t:4")
    kept, leaks = checker.split([exact, near, via_input, clean])
    assert [e.source for e in kept] == ["t:4"]
    assert leaks[0] == {
        "source": "t:1",
        "suite": "handbook",
        "item": "qa-01",
        "match": "exact",
        "similarity": 1.0,
    }
    assert (leaks[1]["suite"], leaks[1]["item"], leaks[1]["match"]) == ("exam", "zh-03", "near")
    assert 0.5 <= leaks[1]["similarity"] < 1
    assert (leaks[2]["source"], leaks[2]["item"], leaks[2]["match"]) == ("t:3", "qa-01", "exact")


def test_text_mode_leaks_when_a_text_contains_a_question() -> None:
    checker = LeakageChecker(QUESTIONS)
    text = Example(text="Chapter 3. " + QUESTIONS[0].text + " The answer is in the returns policy. " * 5)
    assert checker.find(text) == {
        "suite": "handbook",
        "item": "qa-01",
        "match": "contains",
        "similarity": 1.0,
    }
    assert checker.find(Example(text="Nothing to see here. " * 10)) is None


def test_load_eval_questions_reads_project_and_extra_suites(tmp_path: Path) -> None:
    rows = [{"id": "mine-1", "user_input": "What colour is the sky?", "reference": "blue"}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "mine.yaml").write_text("name: mine\nkind: qa\ndata: mine.jsonl\n", encoding="utf-8")
    questions, suites = load_eval_questions(SuiteFiles(), [tmp_path / "mine.yaml"])
    names = {s.name for s in suites}
    assert {"demo_qa", "demo_exam", "support_tickets", "mine"} <= names
    assert EvalQuestion("mine", "mine-1", "What colour is the sky?") in questions
    only_mine, suites = load_eval_questions(SuiteFiles(), [tmp_path / "mine.yaml"], include_project=False)
    assert [q.item_id for q in only_mine] == ["mine-1"] and suites[0].items == 1


def test_arithmetic_operators_tell_questions_apart() -> None:
    from finetune.data.dedup import DEFAULT_THRESHOLD, normalized

    plus, times = "5 + 7 等于多少？只回答数字。", "5 × 7 等于多少？只回答数字。"
    assert normalized(plus) != normalized(times)  # both would be "5 7 等于多少 只回答数字" otherwise
    assert jaccard(shingles(plus), shingles(times)) < DEFAULT_THRESHOLD
    assert normalized("What is 12 - 5?") != normalized("What is 12 + 5?")
    assert normalized("Route QG-R5, please!") == normalized("route qg-r5 please")  # a code is not a minus


def test_near_duplicates_must_state_the_same_numbers() -> None:
    index = MinHashIndex(0.5)
    from finetune.data.dedup import numbers

    a, b = "4 × 8 等于多少？只回答数字。", "2 × 8 等于多少？只回答数字。"
    index.add("a", shingles(a), numbers(a))
    assert jaccard(shingles(a), shingles(b)) >= 0.5  # similar text...
    assert index.similar(shingles(b), numbers(b)) is None  # ...but another question
    assert index.similar(shingles(a + "!"), numbers(a + "!")) is not None
    checker = LeakageChecker([EvalQuestion("s", "1", a)])
    assert checker.find(chat(b, "16")) is None
    assert checker.find(chat(a.replace("只回答数字", "只回答数"), "32")) is not None

"""Metrics: lexical (Chinese per character, English per word), MCQ, retrieval, n/a handling, registry."""

from __future__ import annotations

import pytest

from assistant.errors import ConfigError
from assistant.types import Answer, Question, Usage
from evaluation.items import SuiteItem
from evaluation.metrics import build_metric, build_sample, metric_names, register_metric, summarize
from evaluation.metrics.base import Score
from evaluation.metrics.lexical import bleu, contains_answer, normalize, rouge_l, token_f1, tokenize
from evaluation.metrics.mcq import argmax_letter, breakdown, extract_letter, macro_average
from evaluation.metrics.retrieval import contexts_match

CHOICES = ["北京", "上海", "广州", "深圳"]


def score(name: str, **sample: object) -> Score:
    return build_metric(name).score(sample)


# ---- lexical ---------------------------------------------------------------------------------
def test_tokenize_is_per_character_for_chinese_and_per_word_for_latin() -> None:
    assert tokenize("北京市，Hello World! The end。") == ["北", "京", "市", "hello", "world", "end"]
    assert normalize("ＡＢＣ　１２３！") == "abc 123"  # full-width folded by NFKC


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [("30 Days.", "30 days", 1.0), ("北京 市。", "北京市", 1.0), ("the answer is 30 days", "30 days", 0.0),
     ("上海", "北京", 0.0)],
)  # fmt: skip
def test_exact_match(response: str, reference: str, expected: float) -> None:
    assert score("exact_match", response=response, reference=reference).value == expected


def test_token_f1_english_and_chinese() -> None:
    # 5 predicted tokens (the article dropped), 3 gold, 3 shared: p = 3/5, r = 1.
    assert token_f1("The refund takes 7 business days", "7 business days") == pytest.approx(0.75)
    # 十,五,天 vs 15,天: 1 shared, p = 1/3, r = 1/2, F1 = 0.4. A whole-string tokenizer would give 0.
    assert token_f1("十五天", "15 天") == pytest.approx(0.4)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_rouge_l_counts_chinese_characters() -> None:
    # LCS 5 of 5 predicted and 7 reference characters: F = 2 * 1 * 5/7 / (1 + 5/7) = 5/6.
    assert rouge_l("年假十五天", "带薪年假十五天") == pytest.approx(5 / 6)
    assert rouge_l("annual leave is fifteen days", "fifteen days of annual leave") == pytest.approx(
        2 / 5
    )  # LCS "annual leave", 2 of 5 each
    assert score("rouge_l", response="完全不同", reference="毫无关系").value == 0.0


def test_bleu_in_unit_range_and_chinese_aware() -> None:
    from sacrebleu.metrics import BLEU

    assert bleu("带薪年假十五天", "带薪年假十五天") == pytest.approx(1.0)
    partial = bleu("年假十五天", "带薪年假十五天")
    assert 0.5 < partial < 1.0
    # sacrebleu's default (13a) tokenizer sees one token per Chinese sentence and scores 0.
    raw = BLEU(effective_order=True).sentence_score("年假十五天", ["带薪年假十五天"]).score
    assert raw == 0.0
    assert bleu("", "x") == 0.0


def test_missing_fields_give_na_with_a_reason_never_a_crash() -> None:
    for name in ("exact_match", "token_f1", "rouge_l", "bleu"):
        result = score(name, response="x", reference=None)
        assert result.is_na and result.reason == "missing reference"
        assert str(result) == "n/a (missing reference)"
    assert score("accuracy", reference="A", choices=CHOICES).reason == "missing choice_scores or response"
    assert score("hit_at_k", retrieved_contexts=["x"]).reason.startswith("missing reference_contexts")


def test_summarize_averages_scored_items_and_counts_na() -> None:
    summary = summarize(
        "token_f1", [Score(1.0), Score(0.5), Score(None, "missing reference"), Score(float("nan"))]
    )
    assert summary.mean == pytest.approx(0.75) and (summary.n, summary.n_na) == (2, 2)
    assert summary.na_reasons == {"missing reference": 1, "": 1}
    assert summarize("x", []).mean is None


def test_registry_refuses_duplicates_and_names_unknown_metrics() -> None:
    assert {
        "exact_match",
        "token_f1",
        "rouge_l",
        "bleu",
        "accuracy",
        "unparseable",
        "hit_at_k",
        "mrr",
    } <= set(metric_names())
    with pytest.raises(KeyError, match="already registered"):
        register_metric("token_f1", "evaluation.metrics.lexical:TokenF1")
    with pytest.raises(ConfigError, match="unknown metric 'nope'"):
        build_metric("nope")
    with pytest.raises(ValueError, match="takes no options"):
        build_metric("token_f1", k=3)


def test_build_sample_maps_item_and_answer_to_ragas_fields() -> None:
    question = Question("问题", id="q1", reference="B", choices=CHOICES)
    item = SuiteItem(question, reference_letter="B")
    answer = Answer("问题", "答案是B", Usage(), 0.1, "fake", retrieved_contexts=["ctx"])
    sample = build_sample(item, answer)
    assert (sample["response"], sample["retrieved_contexts"], sample["reference"]) == (
        "答案是B",
        ["ctx"],
        "B",
    )
    assert build_metric("accuracy").score(sample).value == 1.0
    assert build_sample(item)["response"] is None


# ---- MCQ -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "letter"),
    [("答案是B", "B"), ("选B", "B"), ("答案：B", "B"), ("(B)", "B"), ("B.", "B"), ("b", "B"),
     ("我认为应该选择 D 项", "D"), ("正确答案是（C）", "C"), ("The answer is C because ...", "C"),
     ("上海", "B"), ("我不确定", None), ("A或B", None), ("答案是E", None), ("", None)],
)  # fmt: skip
def test_extract_letter_never_guesses(text: str, letter: str | None) -> None:
    assert extract_letter(text, CHOICES) == letter


def test_accuracy_generate_mode_and_unparseable_rate() -> None:
    replies = ["答案是B", "选C", "不知道", "(b)"]
    accuracy = [score("accuracy", response=r, reference="B", choices=CHOICES) for r in replies]
    assert [s.value for s in accuracy] == [1.0, 0.0, 0.0, 1.0]
    assert (
        accuracy[2].detail["predicted"] is None and accuracy[2].reason == "the answer names no option letter"
    )
    unparseable = [score("unparseable", response=r, choices=CHOICES) for r in replies]
    assert summarize("unparseable", unparseable).mean == pytest.approx(0.25)


def test_accuracy_logprob_mode_is_argmax() -> None:
    result = score("accuracy", choice_scores=[-3.0, -0.5, -2.0, -4.0], reference="b", choices=CHOICES)
    assert result.value == 1.0 and result.detail == {"predicted": "B", "mode": "logprob"}
    assert (
        score("accuracy", choice_scores=[-1.0, -2.0], reference="A", choices=CHOICES).value == 0.0
    )  # 2 for 4
    assert score("unparseable", choice_scores=[0, 1, 2, 3], response="x", choices=CHOICES).is_na
    assert argmax_letter([0.1, 0.9, 0.3]) == "B"
    assert argmax_letter([0.5, 0.5, 0.1]) is None and argmax_letter([float("nan"), 1.0]) is None


def test_breakdown_per_subject_and_category() -> None:
    values = [1.0, 0.0, 1.0, None, 1.0, 0.0]
    subjects = ["law", "law", "logic", "logic", "physics", None]
    groups = breakdown(values, subjects)
    assert list(groups) == ["law", "logic", "physics"]
    assert (groups["law"].mean, groups["law"].n) == (0.5, 2)
    assert (groups["logic"].mean, groups["logic"].n, groups["logic"].n_na) == (1.0, 1, 1)
    assert macro_average(groups) == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert breakdown([None], ["x"])["x"].mean is None and macro_average({}) is None
    with pytest.raises(ValueError, match="1 values but 2 groups"):
        breakdown([1.0], ["a", "b"])


# ---- retrieval -------------------------------------------------------------------------------
REFERENCE = "连续病假超过 3 天的，须提交医院开具的证明。"


def test_context_matching_rule() -> None:
    chunk_with_reference = "每年有 12 天带薪病假。连续病假超过 3 天的，须提交医院开具的证明。"
    assert contexts_match(chunk_with_reference, REFERENCE)
    assert contexts_match("连续病假超过3天的须提交医院开具的证明", REFERENCE)  # punctuation and spaces
    assert contexts_match("须提交医院开具的证明", REFERENCE)  # a chunk cut from the reference passage
    assert not contexts_match("员工结婚可享受 3 天婚假，须在领取结婚证后一年内休完。", REFERENCE)
    assert not contexts_match("证明", REFERENCE)  # too short to count
    assert contexts_match(
        "Refunds are paid within 7 business days.", "refunds are paid within 7 business days"
    )


def test_hit_at_k_and_mrr() -> None:
    retrieved = [
        "办公地点在杭州。",
        "员工结婚可享受 3 天婚假。",
        REFERENCE,
        "出差期间每天发放 100 元餐费补贴。",
    ]
    sample = {"retrieved_contexts": retrieved, "reference_contexts": [REFERENCE]}
    assert build_metric("hit_at_k", k=3).score(sample).value == 1.0
    assert build_metric("hit_at_k", k=2).score(sample).value == 0.0
    assert build_metric("hit_at_k", k=2).label == "hit@2"
    assert build_metric("mrr").score(sample).value == pytest.approx(1 / 3)
    assert build_metric("mrr", k=2).score(sample).value == 0.0
    assert build_metric("mrr").score({**sample, "retrieved_contexts": []}).value == 0.0
    by_ids = {"retrieved_context_ids": ["d3", "d1"], "reference_context_ids": ["d1"]}
    assert build_metric("mrr").score(by_ids).value == 0.5
    with pytest.raises(ValueError, match="k must be a positive integer"):
        build_metric("hit_at_k", k=0)


def test_contains_answer_forgives_wrapping_but_not_a_wrong_answer() -> None:
    assert contains_answer("3 × 9 = 27.", "27") == 1.0
    assert contains_answer("270", "27") == 0.0  # tokens, not characters
    assert contains_answer("The capital of France is Paris.", "Paris") == 1.0
    assert contains_answer("退货请寄到禾风路 16 号。", "禾风路") == 1.0
    assert contains_answer("退货请寄到禾丰路。", "禾风路") == 0.0
    assert contains_answer("New York City", "York New") == 0.0  # in order
    assert contains_answer("", "Paris") == 0.0
    from evaluation.metrics import build_metric

    assert build_metric("contains_answer").compute({"response": "QG-R5", "reference": "qg-r5"}).value == 1.0

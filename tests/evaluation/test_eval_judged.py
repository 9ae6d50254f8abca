"""Judged (LLM-as-judge) metrics: ragas 0.4.3 driven by a scripted FakeBackend judge.

Replies are the JSON that ragas' prompts ask for (its output models in
``ragas.metrics.collections.<metric>.util``), so each test checks ragas' arithmetic on
verdicts we chose, and that every unusable reply is counted as a judge failure.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import (
    BackendError,
    CapabilityError,
    ConfigError,
    ContextOverflowError,
    ModelNotFoundError,
)
from assistant.types import Message
from evaluation.metrics import build_metric
from evaluation.metrics.base import Score
from evaluation.metrics.judge import Judge, JudgeParseError, parse_reply
from evaluation.metrics.judged import (
    NO_JUDGE,
    AnswerCorrectness,
    AnswerRelevancy,
    ContextPrecision,
    ContextRecall,
    Faithfulness,
)
from tests.conftest import REAL_HOME, TEST_PACK  # at import time, before LADDER_HOME is isolated

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of France?"
RESPONSE = "Paris is the capital of France. It has the Eiffel Tower. It has ten million people."
CONTEXTS = ["Paris is the capital and largest city of France.", "The Eiffel Tower is in Paris."]
REFERENCE = "Paris is the capital of France and lies on the Seine."


def sample(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user_input": QUESTION,
        "response": RESPONSE,
        "retrieved_contexts": list(CONTEXTS),
        "reference": REFERENCE,
        "reference_contexts": None,
    }
    fields.update(overrides)
    return fields


# ---- scripted replies, shaped like ragas' output models -----------------------------------
def statements(*texts: str) -> str:
    return json.dumps({"statements": list(texts)})


def nli(verdicts: Sequence[int]) -> str:
    return json.dumps(
        {
            "statements": [
                {"statement": f"statement {i}", "reason": "as the context says", "verdict": v}
                for i, v in enumerate(verdicts)
            ]
        }
    )


def attributions(flags: Sequence[int]) -> str:
    return json.dumps(
        {
            "classifications": [
                {"statement": f"reference statement {i}", "reason": "checked", "attributed": f}
                for i, f in enumerate(flags)
            ]
        }
    )


def usefulness(verdict: int) -> str:
    return json.dumps({"reason": "judged", "verdict": verdict})


class FakeEncoder:
    """Deterministic embeddings: fixed vectors for known texts, a hash-free default."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.encoded: list[str] = []

    def encode(self, texts: list[str]) -> list[list[float]]:
        self.encoded.extend(texts)
        return [self.vectors.get(text, [0.0, 0.0, 1.0]) for text in texts]


def judge_with(
    *replies: str, encoder: FakeEncoder | None = None, **options: Any
) -> tuple[Judge, FakeBackend]:
    backend = FakeBackend(replies, model_id="fake-judge")
    return Judge(backend, encoder, **options), backend


def prompts(backend: FakeBackend) -> list[str]:
    return [conversation[-1].content for conversation, _ in backend.calls]


# ---- values -------------------------------------------------------------------------------
def test_faithfulness_is_the_share_of_supported_statements() -> None:
    judge, backend = judge_with(statements("s1", "s2", "s3"), nli([1, 0, 1]))
    [score] = Faithfulness().score_many([sample()], judge)
    assert score.value == pytest.approx(2 / 3)
    assert score.detail == {"judge": "fake-judge"}
    assert backend.pending == 0
    # ragas' own prompts: split the response into statements, then judge them on the contexts.
    split, verdicts = prompts(backend)
    assert "Break down each sentence into one or more fully understandable statements" in split
    assert RESPONSE in split
    assert "judge the faithfulness of a series of statements" in verdicts
    assert CONTEXTS[0] in verdicts and '"s3"' in verdicts
    # Greedy and with room for ragas' JSON, on every call; the judge's cost is counted.
    assert {(p.temperature, p.max_new_tokens) for _, p in backend.calls} == {(0.0, 1024)}
    assert judge.usage.calls == 2
    assert judge.usage.prompt_tokens > 100 and judge.usage.completion_tokens > 0


def test_faithfulness_reads_json_in_fences_and_chatter() -> None:
    fenced = 'Sure! Here are the statements:\n```json\n["s1", "s2"]\n```'
    chatty = f"The verdicts are below.\n{nli([0, 1])}\nHope this helps."
    judge, _ = judge_with(fenced, chatty)
    [score] = Faithfulness().score_many([sample()], judge)
    assert score.value == pytest.approx(0.5)


def test_context_recall_is_the_share_of_attributed_reference_statements() -> None:
    judge, backend = judge_with(attributions([1, 1, 0, 1]))
    [score] = ContextRecall().score_many([sample()], judge)
    assert score.value == pytest.approx(0.75)
    [prompt] = prompts(backend)
    assert REFERENCE in prompt and CONTEXTS[1] in prompt


def test_context_precision_is_average_precision_over_the_ranked_contexts() -> None:
    contexts = ["useful first", "noise", "useful third"]
    judge, backend = judge_with(usefulness(1), usefulness(0), usefulness(1))
    [score] = ContextPrecision().score_many([sample(retrieved_contexts=contexts)], judge)
    # (precision@1 * 1 + precision@3 * 1) / 2 useful contexts = (1 + 2/3) / 2
    assert score.value == pytest.approx((1 + 2 / 3) / 2)
    # One call per context, in rank order, each judged against the reference.
    assert [c in p for c, p in zip(contexts, prompts(backend), strict=True)] == [True] * 3
    assert all(REFERENCE in p for p in prompts(backend))


def test_answer_relevancy_is_cosine_of_the_reconstructed_question() -> None:
    generated = "Which city is the capital of France?"
    encoder = FakeEncoder({QUESTION: [1.0, 0.0, 0.0], generated: [0.6, 0.8, 0.0]})
    judge, backend = judge_with(json.dumps({"question": generated, "noncommittal": 0}), encoder=encoder)
    [score] = AnswerRelevancy().score_many([sample()], judge)
    assert score.value == pytest.approx(0.6)
    assert len(backend.calls) == 1  # strictness 1: greedy replies would repeat
    assert set(encoder.encoded) == {QUESTION, generated}


def test_answer_relevancy_of_a_noncommittal_answer_is_zero() -> None:
    generated = "Which city is the capital of France?"
    encoder = FakeEncoder({QUESTION: [1.0, 0.0, 0.0], generated: [1.0, 0.0, 0.0]})
    judge, _ = judge_with(json.dumps({"question": generated, "noncommittal": 1}), encoder=encoder)
    [score] = AnswerRelevancy().score_many([sample(response="I am not sure.")], judge)
    assert score.value == 0.0


def test_answer_correctness_weighs_statement_f1_and_similarity() -> None:
    encoder = FakeEncoder({RESPONSE: [1.0, 0.0, 0.0], REFERENCE: [0.8, 0.6, 0.0]})
    classification = {
        "TP": [{"statement": "Paris is the capital of France.", "reason": "in both"}],
        "FP": [{"statement": "Paris has ten million people.", "reason": "not in the reference"}],
        "FN": [{"statement": "Paris lies on the Seine.", "reason": "not in the answer"}],
    }
    judge, backend = judge_with(
        statements("Paris is the capital of France.", "Paris has ten million people."),
        statements("Paris is the capital of France.", "Paris lies on the Seine."),
        json.dumps(classification),
        encoder=encoder,
    )
    [score] = AnswerCorrectness().score_many([sample()], judge)
    # F1 = 0.5 (1 TP, 1 FP, 1 FN); similarity = 0.8; ragas weighs them 0.75 / 0.25.
    assert score.value == pytest.approx(0.75 * 0.5 + 0.25 * 0.8)
    assert backend.pending == 0


# ---- honest failures ----------------------------------------------------------------------
def assert_judge_failure(score: Score, cause: str) -> None:
    assert score.value is None
    assert score.reason.startswith("judge parse failure: ")
    assert cause in score.reason
    assert score.detail == {"judge_failure": True}


def test_garbage_reply_is_a_counted_failure_and_spares_the_next_item() -> None:
    judge, backend = judge_with("The answer looks fine to me.", statements("s1", "s2"), nli([1, 1]))
    scores = Faithfulness().score_many([sample(), sample(response="Paris.")], judge)
    assert_judge_failure(scores[0], "no JSON object in the reply")
    assert scores[1].value == 1.0
    assert backend.pending == 0


def test_json_of_the_wrong_shape_is_a_failure() -> None:
    judge, _ = judge_with(json.dumps({"verdicts": [1, 0]}))
    [score] = Faithfulness().score_many([sample()], judge)
    assert_judge_failure(score, "does not match StatementGeneratorOutput")


def test_no_statements_is_a_failure_not_nan() -> None:
    judge, _ = judge_with(statements())
    [score] = Faithfulness().score_many([sample()], judge)
    assert_judge_failure(score, "no verdicts")


def test_answer_correctness_with_no_statements_is_a_failure_not_a_perfect_match() -> None:
    encoder = FakeEncoder({})
    judge, _ = judge_with(statements(), statements("Paris is the capital of France."), encoder=encoder)
    [score] = AnswerCorrectness().score_many([sample()], judge)
    assert_judge_failure(score, "no statements for a non-empty text")


@pytest.mark.parametrize(
    "metric", [Faithfulness, AnswerRelevancy, ContextPrecision, ContextRecall, AnswerCorrectness]
)
def test_a_judge_that_cannot_answer_raises_its_own_error_naming_the_judge(metric: type) -> None:
    # ragas 0.4.3 passes the backend's exception through ascore unwrapped, for every metric.
    def unreachable(conversation: list[Message]) -> str:
        raise BackendError("cannot reach http://127.0.0.1:9/v1", hint="start the server")

    judge = Judge(FakeBackend(default=unreachable, model_id="fake-judge"), FakeEncoder({}))
    with pytest.raises(BackendError) as failure:
        metric().score_many([sample(), sample()], judge)
    assert failure.value.exit_code == 5
    assert (
        failure.value.message
        == f"the judge 'fake-judge' failed on {metric.name}: cannot reach http://127.0.0.1:9/v1"
    )
    assert failure.value.hint == "start the server"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ModelNotFoundError("http://x/v1 does not serve model 'judge'"), 3),
        (CapabilityError("the endpoint cannot do this"), 6),
        (ContextOverflowError("the prompt is too long for 'judge'"), 7),
    ],
)
def test_every_error_a_user_can_fix_stops_scoring_with_its_own_exit_code(error: Exception, code: int) -> None:
    def failing(conversation: list[Message]) -> str:
        raise error

    with pytest.raises(type(error)) as failure:
        ContextRecall().score_many([sample()], Judge(FakeBackend(default=failing, model_id="fake-judge")))
    assert failure.value.exit_code == code
    assert str(failure.value).startswith("the judge 'fake-judge' failed on context_recall: ")


def test_an_unexpected_error_while_judging_is_not_a_parse_failure() -> None:
    def broken(conversation: list[Message]) -> str:
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        Faithfulness().score_many([sample()], Judge(FakeBackend(default=broken)))


def test_each_built_metric_goes_through_the_judges_prepare_metric() -> None:
    prepared: list[Any] = []

    class PreparingJudge(Judge):
        def prepare_metric(self, ragas_metric: Any) -> Any:
            prepared.append(ragas_metric)
            return ragas_metric

    judge = PreparingJudge(FakeBackend([statements("s1"), nli([1])]))
    [score] = Faithfulness().score_many([sample()], judge)
    assert score.value == 1.0
    assert [type(m).__name__ for m in prepared] == ["Faithfulness"]


def test_missing_fields_are_na_and_cost_no_judge_call() -> None:
    judge, backend = judge_with(statements("s1"), nli([1]))
    scores = Faithfulness().score_many(
        [sample(retrieved_contexts=None), sample(retrieved_contexts=[]), sample(response="  "), sample()],
        judge,
    )
    assert [s.reason for s in scores[:3]] == [
        "missing retrieved_contexts",
        "missing retrieved_contexts",
        "missing response",
    ]
    assert all(s.value is None and "judge_failure" not in s.detail for s in scores[:3])
    assert scores[3].value == 1.0
    assert len(backend.calls) == 2


def test_without_a_judge_the_score_is_na() -> None:
    for name in (
        "faithfulness",
        "answer_relevancy",
        "context_precision",
        "context_recall",
        "answer_correctness",
    ):
        metric = build_metric(name)
        score = metric.score(sample())
        assert score.value is None and score.reason == NO_JUDGE
    assert Faithfulness().score(sample(retrieved_contexts=None)).reason == "missing retrieved_contexts"


def test_embedding_metrics_need_an_embeddings_model() -> None:
    judge, backend = judge_with(json.dumps({"question": QUESTION, "noncommittal": 0}))
    with pytest.raises(ConfigError, match="no embeddings model"):
        AnswerRelevancy().score_many([sample()], judge)
    assert backend.calls == []


# ---- the runner's view --------------------------------------------------------------------
def test_registered_with_ragas_fields_and_the_judge_flag() -> None:
    expected = {
        "faithfulness": ("user_input", "response", "retrieved_contexts"),
        "answer_relevancy": ("user_input", "response"),
        "context_precision": ("user_input", "retrieved_contexts", "reference"),
        "context_recall": ("user_input", "retrieved_contexts", "reference"),
        "answer_correctness": ("user_input", "response", "reference"),
    }
    for name, requires in expected.items():
        metric = build_metric(name)
        assert (metric.name, metric.requires, metric.kinds) == (name, requires, ("qa",))
        assert getattr(metric, "needs_judge", False) is True
        assert metric.bounds == (0.0, 1.0) and metric.higher_is_better
    assert getattr(build_metric("token_f1"), "needs_judge", False) is False


def test_many_items_at_once_come_back_in_order() -> None:
    verdicts = {"C0": [1, 1], "C1": [1, 0], "C2": [0, 0]}

    def reply(conversation: list[Message]) -> str:
        prompt = conversation[-1].content
        if "Break down each sentence" in prompt:
            return statements("first", "second")
        context = next(c for c in verdicts if f"context {c}" in prompt)
        return nli(verdicts[context])

    judge = Judge(FakeBackend(default=reply), concurrency=3)
    samples = [sample(retrieved_contexts=[f"context {c}"]) for c in verdicts]
    scores = Faithfulness().score_many(samples, judge)
    assert [s.value for s in scores] == [1.0, 0.5, 0.0]


def test_score_many_works_inside_a_running_event_loop() -> None:
    judge, _ = judge_with(attributions([1, 0]))

    async def from_async_code() -> list[Score]:
        return ContextRecall().score_many([sample()], judge)

    [score] = asyncio.run(from_async_code())
    assert score.value == pytest.approx(0.5)


def test_judge_from_settings_loads_embeddings_only_when_asked() -> None:
    from assistant.settings import load_settings

    judge = Judge.from_settings("fake", load_settings({}))
    assert isinstance(judge.backend, FakeBackend)
    assert judge.concurrency == 1 and judge.max_new_tokens == 1024
    assert judge._encoder is None  # faithfulness alone never loads sentence-transformers


def test_parse_reply_skips_an_echoed_schema() -> None:
    from ragas.metrics.collections.context_precision.util import ContextPrecisionOutput

    text = '{"properties": {"verdict": {"type": "integer"}}} then {"reason": "ok", "verdict": 1}'
    assert parse_reply(text, ContextPrecisionOutput).verdict == 1
    with pytest.raises(JudgeParseError, match="no JSON object"):
        parse_reply('{"reason": "cut off at the token limit', ContextPrecisionOutput)


def test_importing_the_metrics_loads_no_heavy_library() -> None:
    code = (
        "import sys, evaluation.metrics.base, evaluation.metrics.judged\n"
        "print(sorted(m for m in ('torch', 'ragas', 'transformers', 'langchain_core') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- a real small model as judge ----------------------------------------------------------
@pytest.mark.slow
def test_real_pack_as_judge_gives_a_value_or_a_counted_failure() -> None:
    from assistant.settings import load_settings

    if not (REAL_HOME / "models" / TEST_PACK / "config.json").exists():
        pytest.skip(f"{TEST_PACK} is not installed under {REAL_HOME}")
    settings = load_settings({"home": str(REAL_HOME), "threads": 2, "dtype": "float32"})
    judge = Judge.from_settings(TEST_PACK, settings, max_new_tokens=128)
    [score] = Faithfulness().score_many([sample(response="Paris is the capital of France.")], judge)
    assert judge.usage.calls >= 1
    if score.value is None:
        assert score.reason.startswith("judge parse failure: ")
        assert score.detail == {"judge_failure": True}
    else:
        assert 0.0 <= score.value <= 1.0
        assert score.detail["judge"] == judge.model_id

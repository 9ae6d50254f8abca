"""The evaluation runner: scores, cache, resume, modes, thresholds, comparisons, cost, judges."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from assistant.types import GenParams, Message
from evaluation.metrics.base import BaseMetric, Score, register_metric
from evaluation.runner import EvalPlan, Runner
from evaluation.store import RunStore
from evaluation.suites.readers import SuiteError
from tests.helpers.suites import write_mcq_suite

DATASETS = Path(__file__).resolve().parents[2] / "datasets" / "suites"


class ScoringFake(FakeBackend):
    """A fake that counts scored prompts too (FakeBackend.calls counts generate calls only)."""

    def __init__(self, *args: Any, fail_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scored: list[str] = []
        self.templated: list[bool] = []
        self.fail_after = fail_after

    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        self.templated.append(chat_template)
        if self.fail_after is not None and len(self.scored) + len(prompts) > self.fail_after:
            raise RuntimeError("the model crashed")
        self.scored += prompts
        return super().score_choices(prompts, choices)

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Any]:
        if self.fail_after is not None and len(self.calls) + len(batch) > self.fail_after:
            raise RuntimeError("the model crashed")
        return super().generate(batch, params)


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 4, "threads": 1})


def scores_for(labels: str, right: Sequence[bool]) -> list[list[float]]:
    """Option scores whose argmax is the right letter where ``right`` says so, else the next one."""
    rows = []
    for label, ok in zip(labels, right, strict=True):
        target = "ABCD".index(label) if ok else ("ABCD".index(label) + 1) % 4
        rows.append([0.0 if i == target else -5.0 for i in range(4)])
    return rows


def test_logprob_accuracy_breakdown_and_a_cached_rerun(settings: Settings, tmp_path: Path) -> None:
    labels = "ABCDABCDAB"
    right = [True, True, True, False, True, False, True, True, False, True]  # 7 of 10
    suite = write_mcq_suite(tmp_path, labels)
    backend = ScoringFake(choice_scores=scores_for(labels, right))
    store = RunStore(settings.db_path)
    run = Runner(settings, store, backend=backend).run(EvalPlan(suite))
    assert run.status == "complete" and run.mode == "logprob"
    accuracy = run.strategies[0].metrics["accuracy"]
    assert accuracy.mean == pytest.approx(0.7) and accuracy.n == 10
    assert accuracy.low is not None and accuracy.high is not None and accuracy.low < 0.7 < accuracy.high
    # The unparseable rate means nothing in logprob mode: it is left out, not reported as n/a.
    assert "unparseable" not in run.strategies[0].metrics
    odd = [right[i] for i in range(10) if i % 2]
    assert run.strategies[0].breakdown["subject"]["algebra"].mean == pytest.approx(sum(odd) / len(odd))
    assert len(backend.scored) == 10 and run.model_calls == 10
    predicted = [r.scores["accuracy"].detail["predicted"] for r in run.records]
    assert predicted[3] == "A" and predicted[0] == "A"  # item 3 is D, scored wrong as the next letter

    again = Runner(settings, store, backend=backend).run(EvalPlan(suite))
    assert len(backend.scored) == 10, "an unchanged re-run must not call the model"
    assert again.model_calls == 0 and all(r.cached for r in again.records)
    assert again.run_id != run.run_id
    assert again.strategies[0].metrics["accuracy"].mean == pytest.approx(0.7)


def test_a_changed_item_or_config_misses_the_cache(settings: Settings, tmp_path: Path) -> None:
    suite = DATASETS / "demo_qa.yaml"
    backend = FakeBackend(default="30 days")
    store = RunStore(settings.db_path)
    Runner(settings, store, backend=backend).run(EvalPlan(suite, limit=3, no_judge=True))
    assert len(backend.calls) == 3
    Runner(settings, store, backend=backend).run(EvalPlan(suite, limit=4))
    assert len(backend.calls) == 4, "only the new item is answered"
    config = tmp_path / "terse.yaml"
    config.write_text("strategy: prompt\nsystem_prompt: Answer in five words.\n", encoding="utf-8")
    run = Runner(settings, store, backend=backend).run(EvalPlan(suite, strategies=[str(config)], limit=4))
    assert len(backend.calls) == 8 and run.strategies[0].strategy == "terse"
    assert backend.calls[-1][0][0] == Message("system", "Answer in five words.")


def test_qa_scores_and_the_rendered_prompt(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    rows = [{"id": "a", "user_input": "What is 2+2?", "reference": "4"},
            {"id": "b", "user_input": "Capital of France?", "reference": "Paris"}]  # fmt: skip
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    suite = tmp_path / "qa.yaml"
    suite.write_text(
        json.dumps({"name": "qa", "kind": "qa", "data": "qa.jsonl", "prompt": "Answer briefly: {question}",
                    "metrics": ["exact_match", "token_f1"]}), encoding="utf-8")  # fmt: skip
    backend = FakeBackend(default=lambda conv: "4" if "2+2" in conv[-1].content else "Lyon")
    run = Runner(settings, RunStore(settings.db_path), backend=backend).run(EvalPlan(suite))
    assert [c[0][-1].content for c in backend.calls] == ["Answer briefly: What is 2+2?",
                                                         "Answer briefly: Capital of France?"]  # fmt: skip
    by_id = {r.item_id: r for r in run.records}
    assert by_id["a"].scores["exact_match"].value == 1.0 and by_id["b"].scores["exact_match"].value == 0.0
    assert by_id["a"].user_input == "What is 2+2?" and by_id["a"].prompt == "Answer briefly: What is 2+2?"
    assert run.strategies[0].metrics["exact_match"].mean == pytest.approx(0.5)


def test_two_strategies_are_compared_on_the_same_items(settings: Settings, tmp_path: Path) -> None:
    labels = "ABCD" * 5
    suite = write_mcq_suite(tmp_path, labels)
    careful = tmp_path / "careful.yaml"
    careful.write_text("strategy: prompt\nsystem_prompt: Be careful.\n", encoding="utf-8")
    answers = dict(zip([f"Question {i}?" for i in range(20)], labels, strict=True))

    def reply(conversation: list[Message]) -> str:
        question = conversation[-1].content.split("\n")[0]
        if conversation[0].content == "Be careful.":
            return f"答案是{answers[question]}"
        return answers[question] if int(question.split()[1][:-1]) % 2 else "I am not sure"

    backend = FakeBackend(default=reply)
    run = Runner(settings, RunStore(settings.db_path), backend=backend).run(
        EvalPlan(suite, strategies=["prompt", str(careful)], mode="generate")
    )
    plain, tuned = (s.metrics for s in run.strategies)
    assert tuned["accuracy"].mean == 1.0
    assert plain["accuracy"].mean == pytest.approx(0.5)  # right on odd items, no letter on even ones
    assert plain["unparseable"].mean == pytest.approx(0.5)
    comparison = next(c for c in run.comparisons if c.metric == "accuracy")
    assert (comparison.a, comparison.b, comparison.test) == ("careful", "prompt", "McNemar exact")
    assert (
        comparison.diff == pytest.approx(0.5) and comparison.p_value is not None and comparison.p_value < 0.01
    )


def test_a_crashed_run_resumes_without_duplicates(settings: Settings, tmp_path: Path) -> None:
    labels = "ABCDABCDABCD"
    suite = write_mcq_suite(tmp_path, labels)
    store = RunStore(settings.db_path)
    crashing = ScoringFake(fail_after=8)  # batches of 4: two batches land, the third crashes
    with pytest.raises(RuntimeError, match="crashed"):
        Runner(settings, store, backend=crashing).run(EvalPlan(suite, mode="generate"))
    (row,) = store.list_runs()
    assert row["status"] == "failed" and row["records"] == 8
    healthy = ScoringFake()
    run = Runner(settings, store, backend=healthy).run(EvalPlan(suite, mode="generate"))
    assert run.run_id == row["run_id"] and run.status == "complete"
    assert len(healthy.calls) == 4, "only the items the crash lost are answered again"
    assert sorted(r.item_id for r in run.records) == sorted(f"q{i}" for i in range(12))
    assert [r["status"] for r in store.list_runs()] == ["complete"]
    fresh = Runner(settings, store, backend=healthy).run(
        EvalPlan(suite, mode="generate", resume=False, use_cache=False)
    )
    assert fresh.run_id != run.run_id and len(healthy.calls) == 16


def test_thresholds_and_fail_under(settings: Settings, tmp_path: Path) -> None:
    labels = "ABCD"
    suite = write_mcq_suite(tmp_path, labels, thresholds={"accuracy": 0.5})
    backend = ScoringFake(choice_scores=scores_for(labels, [True, True, True, False]))
    store = RunStore(settings.db_path)
    run = Runner(settings, store, backend=backend).run(EvalPlan(suite))
    assert run.failures == [] and run.strategies[0].metrics["accuracy"].passed is True
    stricter = Runner(settings, store, backend=backend).run(EvalPlan(suite, fail_under={"accuracy": 0.9}))
    assert stricter.failures == ["prompt: accuracy = 0.750 is below the threshold 0.9"]
    with pytest.raises(ConfigError, match="not among the suite's metrics"):
        Runner(settings, store, backend=backend).run(EvalPlan(suite, fail_under={"rouge_l": 0.2}))
    with pytest.raises(ConfigError, match=r"outside 0\.\.1"):
        Runner(settings, store, backend=backend).run(EvalPlan(suite, fail_under={"accuracy": 2}))


def test_user_errors_leave_no_run_behind(settings: Settings, tmp_path: Path) -> None:
    store = RunStore(settings.db_path)
    runner = Runner(settings, store, backend=ScoringFake())
    suite = write_mcq_suite(tmp_path, "AB")
    with pytest.raises(ConfigError, match="prompt strategy only"):
        runner.run(EvalPlan(suite, strategies=["prompt", "reflection"], mode="logprob"))
    with pytest.raises(ConfigError, match="unknown strategy"):
        runner.run(EvalPlan(suite, strategies=["nonsense"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: mcq\ndata: missing.jsonl\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"missing\.jsonl"):
        runner.run(EvalPlan(bad))
    with pytest.raises(ConfigError, match="logprob mode is for multiple-choice"):
        runner.run(EvalPlan(DATASETS / "demo_qa.yaml", mode="logprob"))
    assert store.list_runs() == []


def test_cost_comes_from_usage_and_the_price_table(isolated_home: Path, tmp_path: Path) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(
        "currency: EUR\nprices:\n  - match: 'injected*'\n    prompt_per_1m: 1000\n"
        "    completion_per_1m: 2000\n    per_call: 0.001\n",
        encoding="utf-8",
    )
    settings = load_settings({"batch_size": 4, "price_table": str(table), "model": "injected-model"})
    backend = FakeBackend(default="one two three")  # 3 completion tokens
    run = Runner(settings, RunStore(settings.db_path), backend=backend).run(
        EvalPlan(DATASETS / "demo_qa.yaml", limit=2, no_judge=True)
    )
    cost = run.strategies[0].cost
    assert cost is not None and cost.currency == "EUR" and cost.completion_tokens_mean == 3
    prompt_tokens = sum(r.prompt_tokens for r in run.records) / 2
    expected = 1000 * (prompt_tokens * 1000 / 1e6 + 3 * 2000 / 1e6 + 0.001)
    assert cost.cost_per_1k_questions == pytest.approx(expected)
    assert cost.model_calls_mean == 1 and "injected*" in cost.price_source


class CountingJudgedMetric(BaseMetric):
    """A stand-in for a ragas metric: it needs a judge and counts the judge's work."""

    name: ClassVar[str] = "test_judged_length"
    requires: ClassVar[tuple[str, ...]] = ("response",)
    needs_judge: ClassVar[bool] = True
    calls: ClassVar[list[int]] = []

    def score(self, sample: Mapping[str, Any]) -> Score:
        raise AssertionError("a judged metric is scored through score_many")

    def score_many(self, samples: list[Mapping[str, Any]], judge: Any) -> list[Score]:
        self.calls.append(len(samples))
        return [Score(None, "judge parse failure: no JSON", {"judge_failure": True}) if "bad" in s["response"]
                else Score(judge.grade(s["response"])) for s in samples]  # fmt: skip


register_metric(CountingJudgedMetric.name, CountingJudgedMetric)


class GradingJudge:
    model_id = "grading-judge"

    def grade(self, response: str) -> float:
        return 1.0 if "good" in response else 0.0


def test_judged_metrics_are_cached_counted_and_skippable(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"i{i}", "user_input": f"q{i}", "reference": "r"})
                              for i in range(6)), encoding="utf-8")  # fmt: skip
    suite = tmp_path / "judged.yaml"
    spec = {"name": "judged", "kind": "qa", "data": "qa.jsonl", "metrics": ["token_f1", "test_judged_length"]}
    suite.write_text(json.dumps(spec), encoding="utf-8")
    replies = {"q0": "good", "q1": "good", "q2": "poor", "q3": "bad", "q4": "good", "q5": "poor"}
    backend = FakeBackend(default=lambda conv: replies[conv[-1].content])
    store = RunStore(settings.db_path)
    CountingJudgedMetric.calls.clear()
    run = Runner(settings, store, backend=backend, judge=GradingJudge()).run(EvalPlan(suite, judge="grader"))
    judged = run.strategies[0].metrics["test_judged_length"]
    assert judged.mean == pytest.approx(3 / 5) and judged.n_na == 1
    assert judged.na_reasons == {"judge parse failure: no JSON": 1}
    assert run.judge == "grader" and sum(CountingJudgedMetric.calls) == 6
    Runner(settings, store, backend=backend, judge=GradingJudge()).run(EvalPlan(suite, judge="grader"))
    assert sum(CountingJudgedMetric.calls) == 6, "judgements are cached"
    plain = Runner(settings, store, backend=backend).run(EvalPlan(suite, no_judge=True))
    assert plain.judge is None and list(plain.strategies[0].metrics) == ["token_f1"]


def test_exam_trees_are_scored_on_raw_prompts_unless_the_suite_says_otherwise(
    settings: Settings, tmp_path: Path
) -> None:
    backend = ScoringFake()
    store = RunStore(settings.db_path)
    exam = DATASETS / "demo_exam.yaml"
    Runner(settings, store, backend=backend).run(EvalPlan(exam, limit=2))
    assert backend.templated == [False]  # C-Eval's completion-style prompt, as lm-eval scores it
    spec = exam.read_text(encoding="utf-8") + "chat_template: true\n"
    templated = tmp_path / "demo_exam_chat.yaml"
    templated.write_text(spec.replace("data: demo_exam", f"data: {DATASETS / 'demo_exam'}"), encoding="utf-8")
    Runner(settings, store, backend=backend).run(EvalPlan(templated, limit=2))
    assert backend.templated == [False, True] and len(backend.scored) == 4, (
        "raw and chat scores are cached apart"
    )
    jsonl = write_mcq_suite(tmp_path, "AB")
    Runner(settings, store, backend=backend).run(EvalPlan(jsonl))
    assert backend.templated[-1] is True  # a plain MCQ suite goes through the chat template

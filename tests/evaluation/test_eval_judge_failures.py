"""A judge that fails says so, and what the judge costs is counted apart.

- A judge that cannot answer (unreachable, refusing) stops the run with its own exit code
  (5), naming the judge; the answers made stay cached, nothing judged is cached for the
  failed calls, and the next run resumes and asks the judge again.
- "judge parse failure" is only a reply that could not be used: n/a per item, counted and
  cached (greedy decoding repeats it); ``--no-cache`` asks again.
- The judge's calls and tokens are counted per run and per question, shown apart from the
  answering model's in the CLI line, the Markdown and HTML reports, and the cost.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import BackendError
from assistant.settings import Settings, load_settings
from assistant.types import Message
from evaluation.metrics.judge import Judge
from evaluation.report import render_html, render_markdown
from evaluation.results import RunResult
from evaluation.runner import EvalPlan, Runner
from evaluation.store import RunStore
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.helpers.judged import METRIC, statements, verdicts, write_judged_suite

UNREACHABLE = "cannot reach http://127.0.0.1:9/v1: connection refused/failed"


class ScriptedJudge:
    """The judge model's replies: two statements, then verdicts 1 and 0 (faithfulness 0.5).

    ``fail_from``: from this call on (0-based), raise ``error`` instead, as an unreachable
    endpoint does. ``garbage_for``: the question whose statements reply is not JSON.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.fail_from: int | None = None
        self.error: Exception = BackendError(UNREACHABLE, hint="start the server")
        self.garbage_for: str | None = None

    def __call__(self, conversation: list[Message]) -> str:
        self.calls += 1
        if self.fail_from is not None and self.calls > self.fail_from:
            raise self.error
        prompt = conversation[-1].content
        if "Break down each sentence" in prompt:
            if self.garbage_for and self.garbage_for in prompt:
                return "The answer looks fine to me."
            return statements("s1", "s2")
        return verdicts(1, 0)


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"batch_size": 2, "threads": 1})


def judge_over(script: ScriptedJudge) -> Judge:
    return Judge(FakeBackend(default=script, model_id="fake-judge"))


def count(store: RunStore, table: str) -> int:
    return int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


# ---- a judge that cannot answer -------------------------------------------------------------
def test_a_judge_that_stops_answering_fails_the_run_and_the_rerun_resumes_and_asks_again(
    settings: Settings, tmp_path: Path
) -> None:
    suite = write_judged_suite(tmp_path, items=3)  # batch_size 2: [i0, i1], then [i2]
    answering = FakeBackend()
    script = ScriptedJudge()
    script.fail_from = 4  # the first batch's 2 items x 2 calls, then unreachable
    judge = judge_over(script)
    store = RunStore(settings.db_path)
    plan = EvalPlan(suite, judge="fake-judge")
    with pytest.raises(BackendError) as failure:
        Runner(settings, store, backend=answering, judge=judge).run(plan)
    error = failure.value
    assert error.exit_code == 5
    assert error.message == f"the judge 'fake-judge' failed on {METRIC}: {UNREACHABLE}"
    assert error.hint is not None and error.hint.startswith("start the server; ")
    assert "resumes the run and asks the judge again" in error.hint
    [row] = store.list_runs()
    assert row["status"] == "failed" and row["records"] == 2
    # The first batch's judgements are kept; nothing for the failed item; every answer made is cached.
    assert count(store, "judge_cache") == 2 and count(store, "answer_cache") == 3
    assert len(answering.calls) == 3

    script.fail_from = None  # the judge is back
    again = Runner(settings, store, backend=answering, judge=judge).run(plan)
    assert again.run_id == row["run_id"] and again.status == "complete"
    assert again.model_calls == 0 and len(answering.calls) == 3  # i2's answer came from the cache
    assert again.judge_calls == 2 and script.calls == 4 + 1 + 2  # asked again for i2 only
    metric = again.strategies[0].metrics[METRIC]
    assert (metric.mean, metric.n, metric.n_na) == (0.5, 3, 0)
    assert count(store, "judge_cache") == 3


def test_a_bug_while_judging_is_not_silenced_and_not_cached(settings: Settings, tmp_path: Path) -> None:
    suite = write_judged_suite(tmp_path, items=2)
    script = ScriptedJudge()
    script.fail_from, script.error = 0, RuntimeError("our bug")
    store = RunStore(settings.db_path)
    with pytest.raises(RuntimeError, match="our bug"):
        Runner(settings, store, backend=FakeBackend(), judge=judge_over(script)).run(
            EvalPlan(suite, judge="fake-judge")
        )
    assert count(store, "judge_cache") == 0 and count(store, "answer_cache") == 2
    assert store.list_runs()[0]["status"] == "failed"


def free_port() -> int:
    """A loopback port with nothing listening: bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_an_unreachable_judge_exits_5_caches_no_judgement_and_is_retried(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_MAX_RETRIES", "0")  # refused at once, no backoff
    suite = write_judged_suite(tmp_path, items=2)
    judge = f"openai:judge@http://127.0.0.1:{free_port()}/v1"
    args = ["eval", str(suite), "--model", "fake", "--judge", judge]
    for attempt in range(2):  # a cached failure would make the second run exit 0 without a call
        code, out, err = run(args, capsys)
        assert code == 5, (attempt, out, err)
        assert f"error: the judge '{judge}' failed on {METRIC}: cannot reach http://127.0.0.1:" in err
        assert "judge parse failure" not in out + err
        with sqlite3.connect(isolated_home / "ladder.db") as db:
            assert db.execute("SELECT COUNT(*) FROM judge_cache").fetchone() == (0,)
            assert db.execute("SELECT COUNT(*) FROM answer_cache").fetchone() == (2,)
            assert db.execute("SELECT status FROM runs").fetchall() == [("failed",)]  # resumed, not a new one


# ---- a reply that cannot be parsed ----------------------------------------------------------
def test_a_parse_failure_is_na_counted_cached_and_asked_again_with_no_cache(
    settings: Settings, tmp_path: Path
) -> None:
    suite = write_judged_suite(tmp_path, items=3)
    script = ScriptedJudge()
    script.garbage_for = "Question 1?"
    judge = judge_over(script)
    store = RunStore(settings.db_path)
    first = Runner(settings, store, backend=FakeBackend(), judge=judge).run(
        EvalPlan(suite, judge="fake-judge")
    )
    metric = first.strategies[0].metrics[METRIC]
    assert (metric.mean, metric.n, metric.n_na) == (0.5, 2, 1)
    [(reason, times)] = metric.na_reasons.items()
    assert reason.startswith("judge parse failure: no JSON object in the reply") and times == 1
    assert first.judge_calls == script.calls == 2 + 1 + 2  # the garbage reply ends its item
    assert count(store, "judge_cache") == 3  # the failure too: greedy decoding would repeat it

    cached = Runner(settings, store, backend=FakeBackend(), judge=judge).run(
        EvalPlan(suite, judge="fake-judge")
    )
    assert script.calls == 5 and cached.judge_calls == 0 and cached.judge_cached == 3
    assert cached.strategies[0].metrics[METRIC].n_na == 1

    asked = Runner(settings, store, backend=FakeBackend(), judge=judge).run(
        EvalPlan(suite, judge="fake-judge", use_cache=False)
    )
    assert asked.judge_calls == 5 and script.calls == 10 and asked.judge_cached == 0


# ---- what the judge costs ---------------------------------------------------------------------
def test_judge_usage_is_counted_apart_priced_and_reported(isolated_home: Path, tmp_path: Path) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(
        "currency: EUR\nprices:\n  - match: 'judge-ref'\n    prompt_per_1m: 1000\n"
        "    completion_per_1m: 2000\n    per_call: 0.001\n  - match: '*'\n    compute_per_hour: 0\n",
        encoding="utf-8",
    )
    settings = load_settings({"batch_size": 2, "price_table": str(table)})
    suite = write_judged_suite(tmp_path, items=3)
    judge = judge_over(ScriptedJudge())
    store = RunStore(settings.db_path)
    result = Runner(settings, store, backend=FakeBackend(), judge=judge).run(
        EvalPlan(suite, judge="judge-ref")
    )
    assert result.model_calls == 3 and result.judge_calls == judge.usage.calls == 6
    assert result.judge_prompt_tokens == judge.usage.prompt_tokens > 100
    assert result.judge_completion_tokens == judge.usage.completion_tokens > 0
    # Per item: its share, summing to the run's; per question: the means, priced for the judge.
    assert sum(r.judge_calls for r in result.records) == pytest.approx(6)
    assert sum(r.judge_prompt_tokens for r in result.records) == pytest.approx(result.judge_prompt_tokens)
    cost = result.strategies[0].cost
    assert cost is not None and cost.judge_model == "judge-ref" and cost.judge_calls_mean == 2
    prompt, completion = result.judge_prompt_tokens / 3, result.judge_completion_tokens / 3
    assert cost.judge_prompt_tokens_mean == pytest.approx(prompt)
    expected = 1000 * (prompt * 1000 / 1e6 + completion * 2000 / 1e6 + 2 * 0.001)
    assert cost.judge_cost_per_1k_questions == pytest.approx(expected)
    assert "'judge-ref'" in cost.judge_price_source
    assert cost.cost_per_1k_questions == 0  # the answering model's cost leaves the judge out

    md = render_markdown(result)
    calls = "3 answering + 6 judge made in this run; 0 items and 0 judgements from the cache"
    assert f"| **Model calls** | {calls} |" in md
    assert f"| **Judge tokens** | {result.judge_prompt_tokens:,} prompt + " in md
    assert f"| prompt | judge-ref | 2.00 | {prompt:,.1f} |" in md and "### The judge" in md
    page = render_html(result)
    assert "3 answering + 6 judge made in this run" in page and "<h3>The judge</h3>" in page

    again = Runner(settings, store, backend=FakeBackend(), judge=judge).run(
        EvalPlan(suite, judge="judge-ref")
    )
    assert (again.model_calls, again.judge_calls, again.judge_cached) == (0, 0, 3)
    cost = again.strategies[0].cost
    assert cost is not None and cost.judge_calls_mean == 0 and cost.judge_cost_per_1k_questions == 0
    assert (
        "0 answering + 0 judge made in this run; 3 items and 3 judgements from the cache"
        in render_markdown(again)
    )


def test_cli_shows_judge_calls_apart_from_the_answering_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    suite = write_judged_suite(tmp_path, items=2)
    script = tmp_path / "judge.json"
    script.write_text(json.dumps([statements("s1"), verdicts(1)] * 2), encoding="utf-8")
    args = ["eval", str(suite), "--model", "fake", "--judge", f"fake:{script}", "--report", "r.md"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    line = next(line for line in out.splitlines() if "records ·" in line)
    assert "2 answering + 4 judge model calls · judge tokens " in line
    assert "0 answers and 0 judgements from cache" in line
    assert f"prompt: judge fake:{script}: 2.0 calls/q" in out and "fake backend: free" in out
    assert "| **Model calls** | 2 answering + 4 judge made in this run" in Path("r.md").read_text(
        encoding="utf-8"
    )


# ---- stored runs --------------------------------------------------------------------------
def test_a_run_stored_before_judge_usage_was_counted_still_loads(settings: Settings, tmp_path: Path) -> None:
    suite = write_judged_suite(tmp_path, items=2)
    result = Runner(
        settings, RunStore(settings.db_path), backend=FakeBackend(), judge=judge_over(ScriptedJudge())
    ).run(EvalPlan(suite, judge="fake-judge"))
    old: dict[str, Any] = result.to_dict()
    for key in ("judge_calls", "judge_prompt_tokens", "judge_completion_tokens", "judge_cached"):
        del old[key]
    for strategy in old["strategies"]:
        for key in [k for k in strategy["cost"] if k.startswith("judge_")]:
            del strategy["cost"][key]
    for record in old["records"]:
        for key in [k for k in record if k.startswith("judge_")]:
            del record[key]
    loaded = RunResult.from_dict(json.loads(json.dumps(old)))
    assert loaded.judge_calls is None and loaded.records[0].judge_calls == 0
    cost = loaded.strategies[0].cost
    assert cost is not None and cost.judge_model == "" and cost.judge_cost_per_1k_questions is None
    md = render_markdown(loaded)
    assert "judge calls not counted: an older run" in md and "### The judge" not in md
    assert dataclasses.replace(loaded, records=[]).to_dict()["judge_calls"] is None


def test_the_judge_cache_tells_judges_apart_by_their_cache_identity(
    settings: Settings, tmp_path: Path
) -> None:
    class VersionedJudge(Judge):
        version = "v1"

        def cache_identity(self) -> str:
            return f"{self.model_id}|{self.version}"

    suite = write_judged_suite(tmp_path, items=2)
    script = ScriptedJudge()
    judge = VersionedJudge(FakeBackend(default=script, model_id="fake-judge"))
    store = RunStore(settings.db_path)
    plan = EvalPlan(suite, judge="fake-judge")
    Runner(settings, store, backend=FakeBackend(), judge=judge).run(plan)
    Runner(settings, store, backend=FakeBackend(), judge=judge).run(plan)
    assert script.calls == 4  # the same judge: the second run is cached
    judge.version = "v2"  # new prompts, say: its old verdicts do not apply
    Runner(settings, store, backend=FakeBackend(), judge=judge).run(plan)
    assert script.calls == 8
    judges = {row[0] for row in store.db.execute("SELECT judge FROM judge_cache")}
    assert judges == {"fake-judge|v1", "fake-judge|v2"}

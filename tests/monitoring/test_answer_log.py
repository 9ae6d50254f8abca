"""The answer log: written for answers served by `ladder ask`, the API and the chat through the
real service path (fake backend), never for evaluation runs; what each row holds; the setting
that turns it off; retention; the link to ratings; a broken database never fails an answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend
from assistant.knowledge.retrieve import Hit
from assistant.monitoring import AnswerLogEntry, AnswerLogStore, iso
from assistant.settings import Settings, load_settings
from assistant.types import Question
from tests.cli_helpers import run, wide_terminal  # noqa: F401
from tests.server.helpers import client


def rows(settings: Settings) -> list[AnswerLogEntry]:
    with AnswerLogStore(settings.db_path) as store:
        return store.entries()


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({"threads": 1})


def test_ladder_ask_is_logged_as_cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["ask", "How long is the return window?", "-m", "fake"], capsys)
    assert code == 0 and "[fake] How long is the return window?" in out
    [row] = rows(settings)
    assert (row.source, row.strategy, row.model, row.session_id) == ("cli", "prompt", "fake", None)
    assert row.question == "How long is the return window?"
    assert row.answer_chars == len("[fake] How long is the return window?")
    assert (row.not_in_kb, row.citations, row.best_score, row.kb) == (False, 0, None, None)
    assert row.latency_ms >= 0 and row.created[:10] == datetime.now(UTC).date().isoformat()


def test_the_service_logs_only_when_told_where_the_answer_went(settings: Settings) -> None:
    from assistant.service import answer_questions

    fake = FakeBackend(default=lambda conversation: "an answer")
    answer_questions([Question("q1"), Question("q2")], "prompt", settings=settings, backend=fake)
    assert rows(settings) == []  # evaluation, decisions: no log_source, no row
    answer_questions(
        [Question("q3")], "prompt", settings=settings, backend=fake, log_source="api", session_id="s9"
    )
    [row] = rows(settings)
    assert (row.question, row.source, row.session_id) == ("q3", "api", "s9")


def test_an_evaluation_run_writes_no_answer_log(settings: Settings, tmp_path: Path) -> None:
    from evaluation.runner import EvalPlan, Runner
    from evaluation.store import RunStore

    data = tmp_path / "s.jsonl"
    data.write_text('{"id": "a", "user_input": "Q1?", "reference": "x"}\n', encoding="utf-8")
    suite = tmp_path / "s.yaml"
    suite.write_text('{"name": "s", "kind": "qa", "data": "s.jsonl", "metrics": ["exact_match"]}')
    plan = EvalPlan(suite=suite, strategies=[{"strategy": "prompt"}], model="fake")
    with RunStore(settings.db_path) as store:
        result = Runner(settings, store, backend=FakeBackend(default=lambda c: "x")).run(plan)
    assert len(result.records) >= 1  # questions were answered (the latency sample too) ...
    assert rows(settings) == []  # ... and none went to the answer log


def test_the_api_logs_each_completion_with_its_session(settings: Settings, start: Any) -> None:
    with start() as (url, _server):
        client(url).chat.completions.create(
            model="prompt", messages=[{"role": "user", "content": "Where is my parcel?"}], user="alice"
        )
        stream = client(url).chat.completions.create(
            model="prompt", messages=[{"role": "user", "content": "And my refund?"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    first, second = rows(settings)
    assert (first.source, first.question, first.session_id) == ("api", "Where is my parcel?", "alice")
    assert (second.source, second.question, second.session_id) == ("api", "And my refund?", None)
    assert first.answer_chars == len("[fake] Where is my parcel?")


def test_the_chat_logs_each_answer_with_the_chat_session(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import CHAT_APP

    monkeypatch.setenv("LADDER_MODEL", "fake")
    at = AppTest.from_file(str(CHAT_APP), default_timeout=60).run()
    at.chat_input[0].set_value("Can I return shoes?").run()
    at.run()  # a rerun does not log the same answer again
    [row] = rows(settings)
    assert (row.source, row.question, row.strategy) == ("chat", "Can I return shoes?", "prompt")
    assert row.session_id == at.session_state["chat_session"]


class FakeKB:
    """A knowledge base whose search returns the hits it is given."""

    name = "handbook"

    def __init__(self, scores: Sequence[float]) -> None:
        self.scores = scores

    def search(self, query: str, k: int = 4, mode: str = "hybrid", rerank: bool | None = None) -> list[Hit]:
        return [
            Hit(f"chunk {i}", "docs/policy.md", None, i, score, f"c{i}")
            for i, score in enumerate(self.scores)
        ]


def rag(settings: Settings, scores: Sequence[float], reply: str) -> Any:
    from assistant.strategies.rag import RagConfig, RagStrategy

    config = RagConfig(strategy="rag", kb="handbook")
    return RagStrategy(config, FakeBackend(default=lambda c: reply), settings, knowledge_base=FakeKB(scores))


def test_rag_rows_carry_the_best_hit_score_not_in_kb_and_citations(settings: Settings) -> None:
    from assistant.service import answer_streaming

    answer_streaming(
        rag(settings, [0.71, 0.9, 0.5], "30 days [2] and free [1]."),
        Question("Return?"),
        None,
        log_source="chat",
        session_id="s1",
    )
    # Both under the default min_score (DEFAULT_MIN_SCORE): "not in the knowledge base".
    answer_streaming(rag(settings, [0.05, 0.11], "unused"), Question("Mars?"), None, log_source="chat")
    found, missing = rows(settings)
    assert (found.kb, found.best_score, found.citations, found.not_in_kb) == ("handbook", 0.9, 2, False)
    assert (missing.kb, missing.best_score, missing.citations, missing.not_in_kb) == (
        "handbook",
        0.11,
        0,
        True,
    )


def test_answer_log_false_records_nothing(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.service import answer_questions

    monkeypatch.setenv("LADDER_ANSWER_LOG", "false")
    settings = load_settings()
    assert settings.answer_log is False
    fake = FakeBackend(default=lambda c: "x")
    answer_questions([Question("q")], "prompt", settings=settings, backend=fake, log_source="cli")
    from assistant.service import answer_streaming, build_strategy

    answer_streaming(
        build_strategy("prompt", settings, backend=fake),
        Question("q"),
        None,
        log_source="api",
    )
    with AnswerLogStore(settings.db_path) as store:
        assert store.count() == 0


def entry(created: datetime, question: str = "q", session: str | None = None) -> AnswerLogEntry:
    from assistant.feedback import question_hash

    return AnswerLogEntry(
        iso(created), "api", question, question_hash(question), 5, 100.0, session_id=session
    )


def test_retention_prunes_rows_older_than_answer_log_days_on_write(isolated_home: Path) -> None:
    from assistant.monitoring import record_answers
    from assistant.types import Answer, Usage

    settings = load_settings({"answer_log_days": 30})
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    with AnswerLogStore(settings.db_path) as store:
        store.add([entry(now - timedelta(days=d), f"q{d}") for d in (40, 31, 29, 1)], keep_days=365, now=now)
        assert store.count() == 4
    answer = Answer("new", "reply", Usage(), 0.1, "fake")
    record_answers(settings, [answer], source="cli", latencies_s=[0.1], now=now)
    assert [r.question for r in rows(settings)] == ["q29", "q1", "new"]  # 40 and 31 days old: gone


def test_a_rating_links_to_the_answer_by_question_hash_and_session(settings: Settings) -> None:
    from assistant.feedback import record_feedback

    now = datetime.now(UTC) - timedelta(minutes=5)
    with AnswerLogStore(settings.db_path) as store:
        store.add([entry(now, "Return window?", "s1"), entry(now, "Return window?", "s2")], keep_days=90)
        first, second = store.entries()
    item = record_feedback(
        settings, question="return  WINDOW", answer="7 days", rating="down", session_id="s1"
    )
    with AnswerLogStore(settings.db_path) as store:
        assert store.rated(first.id) == [item.id]  # case, spaces and punctuation normalised away
        assert store.rated(second.id) == []  # another session's answer


def test_a_database_that_cannot_be_written_does_not_fail_the_answer(
    isolated_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from assistant.service import answer_questions

    settings = load_settings()
    settings.home.mkdir(parents=True)
    settings.db_path.mkdir()  # a folder where the database file should be
    answers = answer_questions(
        [Question("q")],
        "prompt",
        settings=settings,
        backend=FakeBackend(default=lambda c: "fine"),
        log_source="cli",
    )
    assert answers[0].response == "fine"
    assert "answer log could not be written" in caplog.text

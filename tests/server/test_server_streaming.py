"""Token streaming through ``ladder serve``, read with the official ``openai`` client: pieces
arrive while the answer is generated, stop strings never reach the client, and strategies
that draft (reflection) show only their final answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from assistant.backends.fake import FakeBackend
from assistant.settings import Settings
from tests.server.helpers import client


def stream(url: str, model: str, text: str, **kwargs: Any) -> list[tuple[float, Any]]:
    """(arrival time, chunk) for every chunk of a streamed reply."""
    chunks = client(url).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True, **kwargs
    )
    return [(time.perf_counter(), chunk) for chunk in chunks]


def contents(timed: list[tuple[float, Any]]) -> list[str]:
    return [c.choices[0].delta.content for _, c in timed if c.choices and c.choices[0].delta.content]


def test_tokens_arrive_as_they_are_generated_and_add_up_to_the_answer(start: Any) -> None:
    reply = "Ladder climbs from prompting to fine-tuning, 从便宜到昂贵，one rung at a time."
    # 1.5 s spread over the reply's pieces: a server that waited for the whole answer would
    # deliver every piece at the same moment.
    fake = FakeBackend([reply], delay_s=1.5)
    with start(backend=fake) as (url, server):
        timed = stream(url, "prompt", "How does Ladder work?", stream_options={"include_usage": True})
    pieces = contents(timed)
    assert len(pieces) > 5
    assert "".join(pieces) == reply
    content_times = [at for at, c in timed if c.choices and c.choices[0].delta.content]
    assert content_times[-1] - content_times[0] > 0.5
    finish = [c for _, c in timed if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert timed[-1][1].usage is not None and timed[-1][1].usage.completion_tokens > 5
    (remembered,) = server.recent.values()
    assert remembered["answer"] == reply


def test_a_stop_string_split_over_pieces_never_reaches_the_client(start: Any) -> None:
    fake = FakeBackend(["The capital of France is Paris.\nUser: and of Spain?\nAssistant: Madrid."])
    with start(backend=fake) as (url, _server):
        timed = stream(url, "prompt", "Capital of France?", stop=["\nUser:"])
    pieces = contents(timed)
    assert "".join(pieces) == "The capital of France is Paris."
    assert len(pieces) > 1 and not any("User" in piece for piece in pieces)


def test_reflection_streams_only_its_final_answer_not_the_drafts(start: Any) -> None:
    fake = FakeBackend(
        [
            "Paris is the capital of Spain.",  # the draft
            "The answer is wrong: the question asks about France.",  # the critique
            "Paris is the capital of France.",  # the revision
            "OK",  # the second critique passes it
        ]
    )
    with start(backend=fake) as (url, _server):
        timed = stream(url, "reflection", "What is the capital of France?")
    assert contents(timed) == ["Paris is the capital of France."]  # one chunk, at the end
    assert len(fake.calls) == 4


def test_a_rag_not_found_answer_arrives_whole(start: Any, settings: Settings, tmp_path: Path) -> None:
    from assistant.knowledge import KnowledgeBase
    from assistant.strategies.rag import NOT_FOUND_ANSWER

    KnowledgeBase.create("empty", settings).close()
    fake = FakeBackend(["never asked"])
    with start(backend=fake) as (url, _server):
        timed = stream(url, "rag:empty", "When are refunds paid?")
    assert contents(timed) == [NOT_FOUND_ANSWER] and fake.calls == []

"""Raw (completion-style) exam prompts scored through an endpoint's ``/v1/completions`` with
``echo`` and ``logprobs``, as lm-evaluation-harness's local-completions does: the boundary
between prompt and choice by text offsets, ``max_tokens`` 0 or 1, servers that cannot do it
(exit 6), an unreachable one (exit 5), retries, the concurrency bound and the run cache."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.openai_compat import OpenAICompatBackend
from assistant.errors import BackendError, CapabilityError
from assistant.settings import load_settings
from tests.backends.completions_stub import DEFAULT_LOGPROB, CompletionsStub
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (fixture)
from tests.openai_server import FakeOpenAIServer, free_port, serve

Start = Callable[..., AbstractContextManager[tuple[CompletionsStub, str]]]


@pytest.fixture
def start() -> Start:
    @contextmanager
    def _start(*args: Any, **kwargs: Any) -> Iterator[tuple[CompletionsStub, str]]:
        stub = CompletionsStub(*args, **kwargs)
        with serve(stub.app) as url:
            yield stub, url

    return _start


def backend(url: str, **flags: Any) -> OpenAICompatBackend:
    values = {"request_timeout_s": 5, "max_retries": 0, "max_concurrency": 4, **flags}
    return OpenAICompatBackend("test-model", url, settings=load_settings(values))


def test_a_choice_scores_the_sum_of_its_own_tokens(start: Start) -> None:
    table = {" A": -0.25, " B": -1.5, " Paris": -1.0, " France": -2.0, "Answer:": -9.0}
    with start(table) as (stub, url):
        scores = backend(url).score_choices(
            ["Q: x?\nAnswer:", "Capital of"], [" A", " B", " Paris France"], chat_template=False
        )
    # " Paris France" is two tokens: both count, and nothing of the prompt does.
    assert scores == [[-0.25, -1.5, -3.0], [-0.25, -1.5, -3.0]]
    assert len(stub.requests) == 2  # one request per prompt, its choices as a list
    first = next(r for r in stub.requests if r["prompt"][0].startswith("Q:"))
    assert first["prompt"] == ["Q: x?\nAnswer: A", "Q: x?\nAnswer: B", "Q: x?\nAnswer: Paris France"]
    assert first["echo"] is True and first["max_tokens"] == 0 and first["logprobs"] >= 1


def test_a_token_across_the_boundary_belongs_to_the_choice(start: Start) -> None:
    """'Answer:' + 'A' is one stub token '\\nAnswer:A' that starts inside the prompt: it holds
    the choice's first character, so it is the choice's score (and never dropped)."""
    with start({"\nAnswer:A": -0.5, "\nAnswer:B": -4.0}) as (_stub, url):
        scores = backend(url).score_choices(["Q\nAnswer:"], ["A", "B", "C"], chat_template=False)
    assert scores == [[-0.5, -4.0, DEFAULT_LOGPROB]]


def test_a_server_that_refuses_max_tokens_0_is_asked_with_1(start: Start) -> None:
    with start({" A": -0.25, " Z": -0.01}, refuse_zero=True) as (stub, url):
        endpoint = backend(url, max_concurrency=1)
        scores = endpoint.score_choices(["Answer:", "Again:"], [" A", " B"], chat_template=False)
    # The generated " Z" after the text is not part of the choice.
    assert scores == [[-0.25, DEFAULT_LOGPROB]] * 2
    assert [r["max_tokens"] for r in stub.requests] == [0, 1, 1]  # refused once, then 1 from then on
    assert endpoint.echo_max_tokens == 1


@pytest.mark.parametrize(
    "switch",
    [{"no_logprobs": True}, {"ignore_echo": True}, {"reject_echo": True}],
    ids=lambda s: next(iter(s)),
)
def test_an_endpoint_without_echo_logprobs_is_a_capability_error(
    start: Start, switch: dict[str, bool]
) -> None:
    with start({}, **switch) as (_stub, url), pytest.raises(CapabilityError) as info:
        backend(url).score_choices(["Answer:"], [" A", " B"], chat_template=False)
    assert info.value.exit_code == 6 and info.value.hint and "--mode generate" in info.value.hint


def test_an_endpoint_without_a_completions_route_is_a_capability_error() -> None:
    chat_only = FakeOpenAIServer(logprobs={"A": -0.1})
    with serve(chat_only.app) as url, pytest.raises(CapabilityError, match="no /v1/completions route"):
        backend(url).score_choices(["Answer:"], [" A", " B"], chat_template=False)


def test_an_unknown_model_is_still_model_not_found(start: Start) -> None:
    from assistant.errors import ModelNotFoundError

    with start({}) as (_stub, url), pytest.raises(ModelNotFoundError):
        OpenAICompatBackend("other", url, settings=load_settings({"max_retries": 0})).score_choices(
            ["Answer:"], [" A"], chat_template=False
        )


def test_503_then_200_is_retried(start: Start) -> None:
    with start({" A": -0.25}, failures=[503, 503]) as (stub, url):
        scores = backend(url, max_retries=2).score_choices(["Answer:"], [" A"], chat_template=False)
    assert scores == [[-0.25]] and len(stub.requests) == 3
    with start({}, failures=[503, 503]) as (stub, url), pytest.raises(BackendError, match="503"):
        backend(url, max_retries=1).score_choices(["Answer:"], [" A"], chat_template=False)
    assert len(stub.requests) == 2


@pytest.mark.parametrize("bound", [1, 3])
def test_requests_in_flight_never_exceed_max_concurrency(start: Start, bound: int) -> None:
    with start({}, delay_s=0.15) as (stub, url):
        prompts = [f"Question {i}:" for i in range(9)]
        scores = backend(url, max_concurrency=bound).score_choices(prompts, [" A"], chat_template=False)
    assert len(scores) == 9 and len(stub.requests) == 9
    assert stub.max_in_flight == bound  # reached, never exceeded


def exam(tmp_path: Path) -> Path:
    import json

    rows = [{"question": f"{n} + 1 = ?", "options": [str(n + 1), str(n + 2)], "label": "A"} for n in range(5)]
    (tmp_path / "exam.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    suite = tmp_path / "exam.yaml"
    suite.write_text(
        "name: raw_exam\nkind: mcq\ndata: exam.jsonl\nchat_template: false\n"
        'prompt: "Question: {question}\\n{options}\\nAnswer:"\nmetrics: [accuracy]\n',
        encoding="utf-8",
    )
    return suite


def test_an_exam_through_the_endpoint_is_cached_so_a_rerun_is_free(start: Start, tmp_path: Path) -> None:
    from evaluation.runner import EvalPlan, Runner

    suite = exam(tmp_path)
    # The runner's choices are the bare letters: "Answer:" + "A" is the stub token "\nAnswer:A".
    with start({"\nAnswer:A": -0.1, "\nAnswer:B": -2.0}) as (stub, url):
        settings = load_settings({"max_retries": 0, "latency_sample": 0})
        plan = EvalPlan(suite, strategies=["prompt"], model=f"openai:test-model@{url}", no_judge=True)
        first = Runner(settings).run(plan)
        sent = len(stub.requests)
        again = Runner(settings).run(replace(plan, resume=False))
    assert first.mode == "logprob" and sent == 5 and first.model_calls == 5
    assert first.strategies[0].metrics["accuracy"].mean == 1.0
    assert again.model_calls == 0 and len(stub.requests) == sent  # the cache answered everything
    assert [r.choice_scores for r in again.records] == [r.choice_scores for r in first.records]
    assert all(math.isclose(r.choice_scores[0], -0.1) for r in first.records)


def test_ladder_eval_exit_codes(
    start: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_MAX_RETRIES", "0")
    monkeypatch.setenv("LADDER_REQUEST_TIMEOUT_S", "3")
    suite = str(exam(tmp_path))
    args = ["eval", suite, "--no-judge", "--latency-sample", "0", "--model"]
    with start({}, no_logprobs=True) as (_stub, url):
        code, _out, err = run([*args, f"openai:test-model@{url}"], capsys)
    assert code == 6 and "no token logprobs" in err and "--mode generate" in err
    chat_only = FakeOpenAIServer()
    with serve(chat_only.app) as url:
        code, _out, err = run([*args, f"openai:test-model@{url}"], capsys)
    assert code == 6 and "no /v1/completions route" in err
    code, _out, err = run([*args, f"openai:test-model@http://127.0.0.1:{free_port()}/v1"], capsys)
    assert code == 5 and "cannot reach" in err


def test_the_boundary_with_byte_tokens_and_a_straddling_token() -> None:
    """Offsets as vLLM returns them: a character split into byte tokens gives the first an
    empty text at the character's offset; both belong to the choice. A token that starts in
    the prompt and ends in the choice belongs to the choice; a generated token after the text
    does not."""
    from types import SimpleNamespace

    endpoint = backend("http://127.0.0.1:9/v1")

    def score(offsets: list[int], values: list[float | None], prompt_chars: int, text_chars: int) -> float:
        logprobs = SimpleNamespace(text_offset=offsets, token_logprobs=values)
        return endpoint._continuation_logprob(logprobs, prompt_chars, text_chars)

    # "答案：" + "龘" (two byte tokens at offset 3) + generated "x" at 4
    assert score([0, 2, 3, 3, 4], [None, -1.0, -0.5, -0.25, -8.0], 3, 4) == -0.75
    # "Answer:" + "A" as one token "Answer:A" starting at 0 after a first token "Q\n"
    assert score([0, 2], [None, -0.5], 9, 10) == -0.5
    # a clean boundary: only the choice's own tokens
    assert score([0, 2, 9], [None, -1.0, -0.125], 9, 11) == -0.125

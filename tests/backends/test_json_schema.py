"""Replies constrained to a JSON schema: the grammar, the local model's constrained decoding
(a tiny random model still ends with JSON that parses), the endpoint's ``response_format``
with its fallback, and the chat model's ``json_schema=`` keyword."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from assistant.backends.fake import FakeBackend
from assistant.backends.json_schema import JsonGrammar, UnsupportedSchema, respond_with_schema
from assistant.backends.openai_compat import OpenAICompatBackend
from assistant.errors import BackendError
from assistant.settings import load_settings
from assistant.types import GenParams, Message
from evaluation.metrics.judge import JudgeParseError, parse_reply
from tests.openai_server import FakeOpenAIServer, serve


def ragas_reply_models() -> list[type[BaseModel]]:
    """Every output model the five judged metrics parse replies into."""
    from ragas.metrics.collections.answer_correctness import util as correctness
    from ragas.metrics.collections.answer_relevancy import util as relevancy
    from ragas.metrics.collections.context_precision import util as precision
    from ragas.metrics.collections.context_recall import util as recall
    from ragas.metrics.collections.faithfulness import util as faithfulness

    return [
        faithfulness.StatementGeneratorOutput,
        faithfulness.NLIStatementOutput,
        relevancy.AnswerRelevanceOutput,
        precision.ContextPrecisionOutput,
        recall.ContextRecallOutput,
        correctness.StatementGeneratorOutput,
        correctness.ClassificationWithReason,
    ]


def ragas_examples() -> list[tuple[type[BaseModel], str]]:
    """(output model, an example reply from ragas' own prompts, as ragas renders it)."""
    from ragas.metrics.collections.answer_correctness.util import CorrectnessClassifierPrompt
    from ragas.metrics.collections.context_recall.util import ContextRecallPrompt
    from ragas.metrics.collections.faithfulness.util import NLIStatementPrompt

    out: list[tuple[type[BaseModel], str]] = []
    for prompt in (NLIStatementPrompt(), ContextRecallPrompt(), CorrectnessClassifierPrompt()):
        for _, reply in prompt.examples:
            out.append((prompt.output_model, reply.model_dump_json(indent=4)))
    return out


# ---- the grammar --------------------------------------------------------------------------
def test_every_prefix_of_a_valid_reply_is_accepted_and_its_completion_parses() -> None:
    for model, text in ragas_examples():
        grammar = JsonGrammar(model.model_json_schema())
        state = grammar.start()
        for end, char in enumerate(text, start=1):
            advanced = grammar.advance(state, char)
            assert advanced is not None, f"{model.__name__} refused {text[:end]!r}"
            state = advanced
            model.model_validate_json(text[:end] + grammar.completion(state))
        assert grammar.complete(state)


def test_the_grammar_refuses_what_ragas_could_not_parse() -> None:
    from ragas.metrics.collections.faithfulness.util import NLIStatementOutput

    grammar = JsonGrammar(NLIStatementOutput.model_json_schema())
    start = grammar.start()
    good = '{"statements": [{"statement": "a", "reason": "b", "verdict": 1}]}'
    assert grammar.complete(grammar.advance(start, good) or start)
    for bad in (
        '{"statements": [{"statement": "a", "verdict": 1}]}',  # a key left out
        '{"statements": [{"statement": "a", "reason": "b", "verdict": "1"}]}',  # a string for an int
        '```json\n{"statements": []}',  # a fence
        '{"statements": []} and more',  # text after the reply
        '{"statements": ["a\nb"]}',  # a raw newline inside a string
    ):
        assert grammar.advance(start, bad) is None, bad
    assert not grammar.complete(grammar.advance(start, '{"statements": [') or start)


def test_a_repeated_string_ends_its_array() -> None:
    from ragas.metrics.collections.faithfulness.util import StatementGeneratorOutput

    grammar = JsonGrammar(StatementGeneratorOutput.model_json_schema())
    repeated = grammar.advance(grammar.start(), '{"statements": ["a", "b", "a"')
    assert repeated is not None
    assert grammar.advance(repeated, ', "c"') is None  # a small model's loop stops here
    assert grammar.completion(repeated) == "]}"
    assert grammar.advance(grammar.start(), '{"statements": ["a", "b", "a\\"", "c"]}') is not None


def test_a_schema_outside_the_subset_is_refused() -> None:
    with pytest.raises(UnsupportedSchema, match="anyOf"):
        optional = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        JsonGrammar({"type": "object", "properties": {"x": optional}})


# ---- the local model: constrained decoding --------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir: Path) -> Any:
    from assistant.backends.hf.local import HFLocalBackend

    settings = load_settings({"threads": 1, "dtype": "float32", "batch_size": 4})
    return HFLocalBackend(tiny_model_dir, settings)


def test_a_tiny_random_model_answers_parseable_json_for_every_ragas_reply_model(tiny_backend: Any) -> None:
    conversations = [[Message("user", "Hello world 你好")], [Message("user", "模型")]]
    params = GenParams(max_new_tokens=64)
    for model in ragas_reply_models():
        # Unconstrained, a random model's reply is no JSON at all ...
        for completion in tiny_backend.generate(conversations, params):
            with pytest.raises(JudgeParseError):
                parse_reply(completion.text, model)
        # ... and constrained, within the same token budget, it is always the reply model.
        with respond_with_schema(model.model_json_schema()):
            completions = tiny_backend.generate(conversations, params)
        for completion in completions:
            assert completion.usage.completion_tokens <= 64
            parsed = parse_reply(completion.text, model)
            assert parsed == model.model_validate_json(completion.text), completion.text


def test_the_schema_stays_with_its_call(tiny_backend: Any) -> None:
    from ragas.metrics.collections.context_precision.util import ContextPrecisionOutput

    with respond_with_schema(ContextPrecisionOutput.model_json_schema()):
        pass
    [completion] = tiny_backend.generate([[Message("user", "Hello")]], GenParams(max_new_tokens=24))
    with pytest.raises(JudgeParseError):
        parse_reply(completion.text, ContextPrecisionOutput)


# ---- the chat model and the fake -------------------------------------------------------------
def test_the_chat_model_passes_json_schema_to_the_backend_and_a_fake_records_it() -> None:
    schema = {"type": "object", "properties": {"verdict": {"type": "integer"}}}
    backend = FakeBackend(['{"verdict": 1}', "plain"])
    chat = backend.chat_model()
    assert chat.invoke([HumanMessage("judge this")], json_schema=schema).content == '{"verdict": 1}'
    assert chat.invoke([HumanMessage("and this")]).content == "plain"
    assert backend.schemas == [schema, None]


# ---- an endpoint: response_format, and the fallback when it is refused ---------------------
@pytest.fixture
def start() -> Iterator[Any]:
    with ExitStack() as stack:

        def _start(**options: Any) -> tuple[FakeOpenAIServer, OpenAICompatBackend]:
            server = FakeOpenAIServer(**options)
            url = stack.enter_context(serve(server.app))
            settings = load_settings({"request_timeout_s": 2, "max_retries": 0, "max_concurrency": 2})
            return server, OpenAICompatBackend("test-model", url, api_key="x", settings=settings)

        yield _start


SCHEMA = {"title": "Verdict", "type": "object", "properties": {"verdict": {"type": "integer"}}}


def test_an_endpoint_gets_the_schema_as_response_format(start: Any) -> None:
    server, backend = start(replies=['{"verdict": 1}', "free text"])
    chat = backend.chat_model()
    assert chat.invoke([HumanMessage("judge")], json_schema=SCHEMA).content == '{"verdict": 1}'
    chat.invoke([HumanMessage("chat")])
    constrained, free = server.chat_requests
    assert constrained["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": SCHEMA},
    }
    assert "response_format" not in free


def test_an_endpoint_that_refuses_response_format_is_asked_without_it_once_and_for_all(start: Any) -> None:
    server, backend = start(
        failures=[(400, "Unrecognized request argument supplied: response_format")],
        replies=['{"verdict": 0}', '{"verdict": 1}'],
    )
    chat = backend.chat_model()
    first = chat.invoke([HumanMessage("judge")], json_schema=SCHEMA)
    second = chat.invoke([HumanMessage("judge again")], json_schema=SCHEMA)
    assert (first.content, second.content) == ('{"verdict": 0}', '{"verdict": 1}')
    refused, retried, later = server.chat_requests
    assert "response_format" in refused
    assert "response_format" not in retried and "response_format" not in later
    assert not backend.accepts_json_schema


def test_another_bad_request_is_not_taken_for_a_refused_response_format(start: Any) -> None:
    server, backend = start(failures=[(400, "messages: field required")])
    with pytest.raises(BackendError, match="HTTP 400: messages: field required"):
        backend.chat_model().invoke([HumanMessage("judge")], json_schema=SCHEMA)
    assert len(server.chat_requests) == 1 and backend.accepts_json_schema

"""The chat's streamed reply: the strategy runs on a thread and the page reads its text as it
is generated; drafting strategies and errors come through whole."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.service import build_strategy
from assistant.settings import Settings
from assistant.types import Question
from ui.web.streaming import StreamedAnswer


def test_pieces_arrive_while_the_model_is_still_generating(fast_settings: Settings) -> None:
    release = threading.Event()

    class Gated(FakeBackend):
        """Stops after its first piece until the test has seen it."""

        def _stream(self, raw: str, stop: Any, sink: Any) -> None:
            def gated(piece: str) -> None:
                sink(piece)
                release.wait(10)

            super()._stream(raw, stop, gated)

    fake = Gated(["Fifteen days of annual leave, 十五天。"])
    reply = StreamedAnswer(build_strategy("prompt", fast_settings, backend=fake), Question("Leave?"))
    pieces = reply.text()
    assert next(pieces) == "Fifteen"  # the model has not finished: it waits on the test
    release.set()
    rest = list(pieces)
    assert len(rest) > 3 and "Fifteen" + "".join(rest) == reply.result().response
    assert reply.result().response == "Fifteen days of annual leave, 十五天。"


def test_reflection_comes_through_whole_without_its_draft(fast_settings: Settings) -> None:
    fake = FakeBackend(["Ten days.", "The answer is wrong: the policy says fifteen.", "Fifteen days.", "OK"])
    reply = StreamedAnswer(build_strategy("reflection", fast_settings, backend=fake), Question("Leave?"))
    assert list(reply.text()) == ["Fifteen days."]
    assert reply.result().response == "Fifteen days."


def test_an_error_of_the_strategy_is_raised_on_the_reading_thread(fast_settings: Settings) -> None:
    class Broken(FakeBackend):
        def generate(self, batch: Any, params: Any) -> Any:
            raise ConfigError("the model is not there")

    reply = StreamedAnswer(build_strategy("prompt", fast_settings, backend=Broken()), Question("Leave?"))
    with pytest.raises(ConfigError, match="not there"):
        list(reply.text())


def test_the_chat_page_shows_and_keeps_the_streamed_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import json

    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import CHAT_APP

    script = tmp_path / "reply.json"
    script.write_text(json.dumps({"default": "Fifteen days of annual leave, 十五天。"}), encoding="utf-8")
    monkeypatch.setenv("LADDER_MODEL", f"fake:{script}")
    at = AppTest.from_file(str(CHAT_APP), default_timeout=60).run()
    at.chat_input[0].set_value("How many days of leave?").run()
    assert not at.exception and not at.error
    assert at.chat_message[1].markdown[0].value == "Fifteen days of annual leave, 十五天。"
    assert at.session_state["chat_history"][1]["content"] == "Fifteen days of annual leave, 十五天。"


def test_a_question_sent_while_an_answer_streams_loses_no_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The user sends a second question while the first answer is still streaming: Streamlit
    stops the running script to rerun it with the new input. Here the first answer's model
    asks for that stop after its first piece, as the browser would; the next run carries the
    second question. Both answers must end up in the history, in order, each one rateable."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.testing.v1 import AppTest

    import ui.web.streaming
    from tests.ui.helpers import CHAT_APP

    monkeypatch.setenv("LADDER_MODEL", "fake")  # it echoes: "[fake] <question>", a word at a time
    interrupted: list[str] = []
    real = ui.web.streaming.StreamedAnswer

    class StoppedOnce(real):  # type: ignore[misc, valid-type]
        def __init__(self, strategy: Any, question: Any) -> None:
            self._script = get_script_run_ctx()  # on the script thread
            super().__init__(strategy, question)

        def text(self) -> Any:
            for piece in super().text():
                if not interrupted and self._script is not None:
                    interrupted.append(piece)
                    self._script.script_requests.request_stop()  # the browser's new input
                yield piece

    monkeypatch.setattr(ui.web.streaming, "StreamedAnswer", StoppedOnce)
    at = AppTest.from_file(str(CHAT_APP), default_timeout=60).run()
    at.chat_input[0].set_value("first question").run()
    assert interrupted == ["[fake]"]  # the first run was stopped mid-answer
    history = at.session_state["chat_history"]
    assert [turn["role"] for turn in history] == ["user"]  # its answer is not finished yet
    at.chat_input[0].set_value("second question").run()
    assert not at.exception and not at.error
    history = at.session_state["chat_history"]
    assert [(turn["role"], turn["content"]) for turn in history] == [
        ("user", "first question"),
        ("assistant", "[fake] first question"),
        ("user", "second question"),
        ("assistant", "[fake] second question"),
    ]
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    assert len(at.feedback) == 2  # both answers can be rated
    at.feedback[0].set_value(1).run()
    at.button[0].click().run()
    from assistant.feedback import list_feedback
    from assistant.settings import load_settings

    [item] = list_feedback(load_settings())
    assert (item.question, item.answer, item.rating) == ("first question", "[fake] first question", "up")

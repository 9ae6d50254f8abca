"""AppTest tests of the Feedback review queue: a thumbs-down with a correction from the chat
shows up, is promoted to the eval suite, and the same question is refused for training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.ui.helpers import texts

Open = Callable[..., Any]


def _record(question: str, rating: str, correction: str | None = None, strategy: str = "rag") -> int:
    from assistant.feedback import record_feedback
    from assistant.settings import load_settings

    return record_feedback(
        load_settings(), question=question, answer="[fake] " + question, rating=rating,
        correction=correction, strategy=strategy, source="chat", session_id="s1",
    ).id  # fmt: skip


def test_review_queue_promotes_and_refuses_leakage(workbench: Open) -> None:
    from assistant.feedback import get_feedback
    from assistant.settings import load_settings

    at = workbench("feedback")
    assert "Nothing to review" in texts(at)
    item_id = _record("How many days of leave?", "down", "Fifteen days.")
    _record("Capital of France?", "up")
    at.run()
    assert {m.label: m.value for m in at.metric}["To review"] == "2"
    assert any("How many days of leave?" in e.label and "thumb_down" in e.label for e in at.expander)
    at.selectbox[1].set_value("down").run()  # thumbs down only
    assert len(at.expander) == 1
    assert at.text_area(key=f"fb_ref_{item_id}").value == "Fifteen days."
    at.button(key=f"fb_suite_{item_id}").click().run()
    assert any(f"Feedback #{item_id} promoted: suite" in s.value for s in at.success)
    promoted = get_feedback(load_settings(), item_id)
    assert promoted.status == "promoted" and promoted.promotions[0].target == "suite"
    # the same question again, this time for training: refused (it is on the test side now)
    again = _record("How many days of leave?", "down", "15 days")
    at.run()
    at.button(key=f"fb_train_{again}").click().run()
    assert any("already" in e.value.lower() or "leak" in e.value.lower() for e in at.error), [
        e.value for e in at.error
    ]
    at.button(key=f"fb_dismiss_{again}").click().run()
    assert get_feedback(load_settings(), again).status == "dismissed"


def test_a_strategy_file_is_shown_by_its_name(workbench: Open) -> None:
    _record("Where is the office?", "down", strategy="/srv/ladder/config/chat_rag.yaml")
    at = workbench("feedback")
    meta = [c.value for c in at.caption if "from chat" in c.value]
    assert meta and "strategy chat_rag.yaml" in meta[0] and "/srv/ladder" not in meta[0]

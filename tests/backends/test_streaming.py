"""The stream sink and the stop-string holdback; the fake backend streaming through them."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

import pytest

from assistant.backends.base import trim_at_stop
from assistant.backends.fake import FakeBackend
from assistant.backends.streaming import StopHoldback, current_sink, stream_to
from assistant.types import GenParams, user


def run(deltas: Sequence[str], stop: Sequence[str] = (), strip: bool = False) -> list[str]:
    """What a holdback sends for ``deltas``, one list entry per sink call."""
    sent: list[str] = []
    holdback = StopHoldback(sent.append, stop, strip=strip)
    for delta in deltas:
        holdback.feed(delta)
    holdback.flush()
    return sent


def test_without_stop_strings_every_delta_passes_at_once() -> None:
    sent: list[str] = []
    holdback = StopHoldback(sent.append)
    holdback.feed("Hello")
    assert sent == ["Hello"]  # not waiting for the end
    holdback.feed(", world")
    holdback.feed("")
    holdback.flush()
    assert sent == ["Hello", ", world"]


def test_a_stop_string_split_across_deltas_is_never_sent() -> None:
    sent: list[str] = []
    holdback = StopHoldback(sent.append, ["\nUser:"])
    holdback.feed("The answer is 42.\nUs")
    assert sent == ["The answer is 42."]  # "\nUs" could start the stop string: held back
    holdback.feed("er")
    assert sent == ["The answer is 42."]
    holdback.feed(": and more")
    holdback.feed(" after the stop")
    holdback.flush()
    assert "".join(sent) == "The answer is 42."


def test_a_held_tail_that_is_not_a_stop_string_is_sent_when_it_proves_harmless() -> None:
    sent: list[str] = []
    holdback = StopHoldback(sent.append, ["###"])
    holdback.feed("a #")
    holdback.feed("#")
    assert sent == ["a "]
    holdback.feed("b")
    assert "".join(sent) == "a ##b"
    holdback.feed("#")
    holdback.flush()  # the end: a tail that never became a stop string is part of the answer
    assert "".join(sent) == "a ##b#"


def test_the_earliest_of_several_stop_strings_wins() -> None:
    raw = ["Paris is", " the capital", "</s", "> of France", "\n\nQ: next"]
    sent = run(raw, stop=["\n\nQ:", "</s>"])
    assert "".join(sent) == "Paris is the capital"
    assert "".join(sent) == trim_at_stop("".join(raw), ["\n\nQ:", "</s>"])[0]


def test_a_long_partial_match_of_one_stop_and_a_short_one_of_another() -> None:
    sent: list[str] = []
    holdback = StopHoldback(sent.append, ["END", "xxEND!"])
    holdback.feed("okxxEN")  # "xxEN" may start "xxEND!", "EN" may start "END": hold the longer
    assert sent == ["ok"]
    holdback.feed("D")
    holdback.flush()
    assert "".join(sent) == "okxx"


def test_chinese_text_streams_character_by_character_and_stops_on_a_chinese_stop() -> None:
    text = "北京是中国的首都。问题：下一题"
    sent = run(list(text), stop=["问题："])
    assert "".join(sent) == "北京是中国的首都。"
    assert len(sent) == len("北京是中国的首都。")  # nothing batched up beyond the held "问"


def test_strip_holds_trailing_whitespace_and_drops_leading_whitespace() -> None:
    sent: list[str] = []
    holdback = StopHoldback(sent.append, strip=True)
    holdback.feed("\n  Hello ")
    assert sent == ["Hello"]
    holdback.feed(" \n")
    assert sent == ["Hello"]
    holdback.feed("world")
    holdback.feed("  \n")
    holdback.flush()
    assert "".join(sent) == "Hello  \nworld" == "\n  Hello  \nworld  \n".strip()


def test_random_splits_always_send_the_trimmed_text() -> None:
    import random

    rng = random.Random(3)
    stops = ["<|im_end|>", "\nUser:", "。问"]
    for _ in range(300):
        pieces = ["Hi", " ", "there", "<|im", "_end|>", "\nUs", "er", ":", "好", "。", "问", " ok ", "\n"]
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        cuts = sorted(rng.sample(range(len(raw) + 1), min(3, len(raw) + 1)))
        deltas = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        for strip in (False, True):
            expected = trim_at_stop(raw, stops)[0]
            assert "".join(run(deltas, stops, strip)) == (expected.strip() if strip else expected), raw


def test_stream_to_sets_the_sink_for_this_context_only() -> None:
    assert current_sink() is None
    sent: list[str] = []
    seen_elsewhere: list[object] = []
    with stream_to(sent.append):
        assert current_sink() == sent.append
        other = threading.Thread(target=lambda: seen_elsewhere.append(current_sink()))
        other.start()
        other.join()
    assert current_sink() is None
    assert seen_elsewhere == [None]  # another thread (another request) is not streamed to


def test_the_fake_streams_one_conversation_in_pieces_and_returns_the_same_completion() -> None:
    fake = FakeBackend(["Ladder climbs 从便宜到贵 rungs", "Ladder climbs 从便宜到贵 rungs"])
    plain = fake.generate([user("q")], GenParams())[0]
    sent: list[str] = []
    with stream_to(sent.append):
        streamed = fake.generate([user("q")], GenParams())[0]
    assert dataclasses.replace(streamed, latency_s=0.0) == dataclasses.replace(plain, latency_s=0.0)
    assert sent == ["Ladder", " climbs", " 从", "便", "宜", "到", "贵", " rungs"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (GenParams(stop=("\nQ:",)), "one two"),
        (GenParams(max_new_tokens=3), "one two\nQ:"),
    ],
)
def test_the_fake_streams_what_it_returns_under_stop_strings_and_the_token_budget(
    params: GenParams, expected: str
) -> None:
    fake = FakeBackend(default="one two\nQ: three four")
    sent: list[str] = []
    with stream_to(sent.append):
        completion = fake.generate([user("q")], params)[0]
    assert completion.text == expected
    assert "".join(sent) == expected and len(sent) >= 2


def test_a_batch_of_several_conversations_is_not_streamed() -> None:
    fake = FakeBackend(default="a b c")
    sent: list[str] = []
    with stream_to(sent.append):
        completions = fake.generate([user("1"), user("2")], GenParams())
    assert [c.text for c in completions] == ["a b c", "a b c"] and sent == []

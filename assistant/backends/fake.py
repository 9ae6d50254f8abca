"""A scripted backend for tests and for the offline UI demo.

``enqueue`` takes replies in order. A reply is a string, a ``Completion``, or a dict
``{"content": "...", "tool_calls": [{"name": "calculator", "args": {...}}]}`` - the last
form scripts LangGraph tool calls. When the queue is empty the backend answers with
``default`` (a string, or a function of the conversation); the built-in default echoes
the last user message, so ``ladder ask --model fake`` works with no script at all.

With a stream sink set (``assistant.backends.streaming``) and one conversation, the reply is
also sent to the sink a word (or CJK character) at a time, through the same stop-string
holdback as a real model, and ``delay_s`` is spread over the pieces.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.backends.base import trim_at_stop
from assistant.backends.json_schema import current_schema
from assistant.backends.streaming import Sink, StopHoldback, current_sink
from assistant.errors import ConfigError
from assistant.types import Completion, GenParams, Message, ToolCall, Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from assistant.models.refs import ModelRef
    from assistant.settings import Settings

Reply = str | Completion | dict[str, Any]
_CJK_OR_WORD = re.compile(r"[\u3400-\u9fff]|[^\s\u3400-\u9fff]+")
# A streamed piece: a word or CJK character with the whitespace before it (or trailing space).
_PIECE = re.compile(r"\s*(?:[\u3400-\u9fff]|[^\s\u3400-\u9fff]+)|\s+")


def count_tokens(text: str) -> int:
    """A deterministic token estimate: one per CJK character, one per other word."""
    return len(_CJK_OR_WORD.findall(text))


def _echo(conversation: list[Message]) -> str:
    last_user = next((m.content for m in reversed(conversation) if m.role == "user"), "")
    return f"[fake] {last_user}"


class FakeBackend:
    # Each conversation is answered and timed on its own, one after another, so an answer's
    # latency_s is a single request's; the evaluation runner then needs no unbatched sample to
    # measure it (a batched local model reports the whole batch's wall time instead).
    batches_together = False

    def __init__(
        self,
        replies: Sequence[Reply] = (),
        default: str | Callable[[list[Message]], str] | None = None,
        model_id: str = "fake",
        choice_scores: Sequence[Sequence[float]] = (),
        delay_s: float = 0.0,
    ) -> None:
        self.model_id = model_id
        # Seconds per reply or scored prompt: makes long runs (progress, kill and resume) testable.
        self.delay_s = delay_s
        self._queue: deque[Reply] = deque()
        self._scores: deque[list[float]] = deque(list(s) for s in choice_scores)
        self._default = default
        # Every call, for assertions: (conversation, params).
        self.calls: list[tuple[list[Message], GenParams]] = []
        # The JSON schema each call asked for (``respond_with_schema``), None where none: a
        # fake cannot constrain its script, it only records the request.
        self.schemas: list[dict[str, Any] | None] = []
        self.enqueue(replies)

    @classmethod
    def from_file(cls, path: str | Path, model_id: str | None = None) -> FakeBackend:
        """A script file: a JSON list of replies, or a mapping of replies, default and delay_s."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"fake script not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: invalid JSON in fake script: {exc.msg}") from None
        if isinstance(data, list):
            data = {"replies": data}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a fake script is a list of replies or a mapping")
        return cls(
            data.get("replies", []),
            default=data.get("default"),
            model_id=model_id or f"fake:{path.name}",
            delay_s=float(data.get("delay_s", 0.0)),
        )

    @classmethod
    def from_ref(cls, ref: ModelRef, settings: Settings) -> FakeBackend:
        """``fake`` (echoes) or ``fake:<script.json>`` (``assistant.backends.load``)."""
        return cls.from_file(ref.target) if ref.target else cls()

    def enqueue(self, replies: Sequence[Reply] | Reply) -> FakeBackend:
        if isinstance(replies, (str, dict, Completion)):
            replies = [replies]
        self._queue.extend(replies)
        return self

    def enqueue_scores(self, scores: Sequence[Sequence[float]]) -> FakeBackend:
        self._scores.extend(list(s) for s in scores)
        return self

    @property
    def pending(self) -> int:
        return len(self._queue)

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        sink = current_sink() if len(batch) == 1 else None
        return [self._one(conversation, params, sink) for conversation in batch]

    def _one(self, conversation: list[Message], params: GenParams, sink: Sink | None = None) -> Completion:
        start = time.perf_counter()
        if self.delay_s and sink is None:
            time.sleep(self.delay_s)
        self.calls.append((conversation, params))
        self.schemas.append(current_schema())
        reply = self._queue.popleft() if self._queue else self._default_reply(conversation)
        prompt_tokens = sum(count_tokens(m.content) for m in conversation)
        if isinstance(reply, Completion):
            if sink is not None:
                self._stream(reply.text, (), sink)
            return reply
        if isinstance(reply, dict):
            text = str(reply.get("content", ""))
            calls = [
                ToolCall(c["name"], dict(c.get("args", {})), c.get("id") or ToolCall("", {}).id)
                for c in reply.get("tool_calls", [])
            ]
        else:
            text, calls = reply, []
        raw = text
        text, _ = trim_at_stop(text, params.stop)
        words = _CJK_OR_WORD.findall(text)
        finish = "tool_calls" if calls else "stop"
        if len(words) > params.max_new_tokens:
            # Cut at the token budget like a real model would.
            cut_at = [m.end() for m in _CJK_OR_WORD.finditer(text)][params.max_new_tokens - 1]
            text, finish = text[:cut_at], "length"
        if sink is not None:
            # The raw reply, as a model would produce it; a cut reply ends where the budget did.
            self._stream(text if finish == "length" else raw, params.stop, sink)
        return Completion(
            text=text,
            usage=Usage(prompt_tokens, count_tokens(text), 1),
            latency_s=time.perf_counter() - start,
            model_id=self.model_id,
            finish_reason=finish,
            tool_calls=calls,
        )

    def _stream(self, raw: str, stop: Sequence[str], sink: Sink) -> None:
        holdback = StopHoldback(sink, stop)
        pieces = _PIECE.findall(raw) or [""]
        for piece in pieces:
            if self.delay_s:
                time.sleep(self.delay_s / len(pieces))
            holdback.feed(piece)
        holdback.flush()

    def _default_reply(self, conversation: list[Message]) -> str:
        if self._default is None:
            return _echo(conversation)
        if callable(self._default):
            return self._default(conversation)
        return self._default

    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        """Scripted scores first; then a deterministic pseudo-score from a hash."""
        out: list[list[float]] = []
        for prompt in prompts:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self._scores:
                row = self._scores.popleft()
                if len(row) != len(choices):
                    raise ValueError(f"scripted scores have {len(row)} values for {len(choices)} choices")
                out.append(row)
                continue
            row = []
            for choice in choices:
                digest = hashlib.sha256(f"{prompt}\x00{choice}".encode()).digest()
                row.append(-1.0 - digest[0] / 64.0)
            out.append(row)
        return out

    def chat_model(self) -> BaseChatModel:
        from assistant.backends.chat_model import LadderChatModel

        return LadderChatModel(backend=self)

"""Self-reflection: draft, check, revise, for at most ``max_rounds`` rounds.

Each round checks one draft: round 1 the first answer, round k the (k-1)th revision. The
answer is the first draft that passes, else the last draft. The check is either

- ``llm``: the model critiques its own answer and replies "OK" when it finds nothing wrong;
- a verifier from ``assistant.strategies.verifiers`` (``json_schema``, ``regex``, ``labels``,
  ``mcq``, ``sql`` or one a user registered): deterministic and free, and its feedback (for
  SQL: the SQLite error plus the schema) tells the model exactly what to fix.

The loop is a LangGraph graph over the whole batch: drafts for all questions come from
one ``generate`` call, and each round revises only the failing answers, in one call.
A verifier that crashes ends that question with its current draft; the trace keeps the
error. The trace records every draft, check and revision.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from assistant.errors import ConfigError
from assistant.strategies.base import BaseStrategy, Episode, StrategyConfig, StrategyCost
from assistant.strategies.verifiers import (
    Verdict,
    VerifierOptions,
    build_verifier,
    json_safe_rows,
    verifier_names,
)
from assistant.types import Answer, Message, Question

logger = logging.getLogger(__name__)

REVIEWER_SYSTEM_PROMPT = "You are a careful, strict reviewer."
CRITIQUE_TEMPLATE = (
    "Check this answer to the question for mistakes.\n\n"
    "Question:\n{question}\n\nAnswer:\n{answer}\n\n"
    "If the answer is correct and complete, reply with exactly: OK\n"
    "Otherwise list the problems briefly. Do not rewrite the answer."
)
REVISE_TEMPLATE = (
    "Your answer did not pass a check.\nFeedback:\n{feedback}\n\n"
    "Write the corrected answer. Reply with the corrected answer only, in the format the question asks for."
)
_PASS = re.compile(
    r"^\W*(?:ok(?:ay)?|pass(?:ed)?|correct|lgtm|no (?:problems|issues|mistakes)"
    r"|(?:the\s+)?answer\s+is\s+(?:correct|right)|正确|没有问题|无误|通过)(?!\w)",
    re.IGNORECASE,
)
_OBJECTION = re.compile(
    r"\b(?:but|however|although|incorrect|wrong|error|mistake|missing)\b|但是|错误|不正确|缺少", re.IGNORECASE
)


def parse_critique(text: str) -> Verdict:
    """An LLM critique as a verdict: "OK"/"PASS" (with no objection after it) passes."""
    critique = text.strip()
    if not critique:
        return Verdict(True, "(empty critique: nothing to fix)")
    ok = bool(_PASS.match(critique)) and not _OBJECTION.search(critique)
    return Verdict(ok, critique)


@dataclass
class ReflectionConfig(StrategyConfig):
    strategy: str = "reflection"
    max_rounds: int = 2
    # "llm" (self-critique) or a verifier name: json_schema, regex, labels, mcq, sql, ...
    check: str = "llm"
    labels: list[str] | None = None  # for `labels`
    pattern: str | None = None  # for `regex`
    database: str | None = None  # for `sql`: a SQLite file, opened read-only
    sql_timeout_s: float = 2.0
    critique_template: str = CRITIQUE_TEMPLATE
    revise_template: str = REVISE_TEMPLATE
    # When a verifier passes, answer with its normal form (the label, the letter, the bare SQL).
    normalize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_rounds <= 0:
            raise ConfigError(f"max_rounds must be > 0, got {self.max_rounds}")
        known = ["llm", *verifier_names()]
        if self.check not in known:
            raise ConfigError(f"unknown check {self.check!r}", hint=f"known: {', '.join(known)}")
        if self.sql_timeout_s <= 0:
            raise ConfigError(f"sql_timeout_s must be > 0, got {self.sql_timeout_s}")
        for name, template, fields in (
            ("critique_template", self.critique_template, ("{question}", "{answer}")),
            ("revise_template", self.revise_template, ("{feedback}",)),
        ):
            missing = [f for f in fields if f not in template]
            if missing:
                raise ConfigError(f"{name} must contain {' and '.join(missing)}")

    def verifier_options(self) -> VerifierOptions:
        return VerifierOptions(labels=self.labels, pattern=self.pattern, database=self.database,
                               schema=self.json_schema, timeout_s=self.sql_timeout_s)  # fmt: skip


@dataclass(kw_only=True)
class _Item(Episode):
    """One question's progress through the loop."""

    conversation: list[Message]
    draft: str = ""
    round: int = 0
    feedback: str = ""


class _State(TypedDict):
    items: list[_Item]
    started: float


def _replace(template: str, **values: str) -> str:
    # str.replace, not str.format: answers and SQL are full of braces.
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


class ReflectionStrategy(BaseStrategy):
    name: ClassVar[str] = "reflection"
    Config: ClassVar[type[StrategyConfig]] = ReflectionConfig

    def __init__(self, config: StrategyConfig, backend: Any, settings: Any) -> None:
        super().__init__(config, backend, settings)
        if not isinstance(config, ReflectionConfig):
            raise ConfigError(f"reflection needs a ReflectionConfig, got {type(config).__name__}")
        self.reflection = config
        self.verifier = (
            None if config.check == "llm" else build_verifier(config.check, config.verifier_options())
        )
        self._compiled: Any = None

    # ---- the graph -----------------------------------------------------------------
    def _graph(self) -> Any:
        if self._compiled is None:
            from langgraph.graph import END, START, StateGraph

            graph = StateGraph(_State)
            graph.add_node("generate", self._generate)
            graph.add_node("check", self._check)
            graph.add_node("revise", self._revise)
            graph.add_edge(START, "generate")
            graph.add_edge("generate", "check")
            graph.add_conditional_edges("check", self._route, ["revise", END])
            graph.add_edge("revise", "check")
            self._compiled = graph.compile()
        return self._compiled

    def _route(self, state: _State) -> str:
        return "revise" if any(not item.done for item in state["items"]) else "__end__"

    def _generate(self, state: _State) -> dict[str, Any]:
        items = state["items"]
        completions = self.backend.generate([i.conversation for i in items], self.config.gen_params())
        for item, completion in zip(items, completions, strict=True):
            item.record(completion)
            item.round, item.draft = 1, completion.text
            item.trace.add("generate", round=1, draft=completion.text, finish_reason=completion.finish_reason)
        return {"items": items}

    def _check(self, state: _State) -> dict[str, Any]:
        active = [item for item in state["items"] if not item.done]
        method = self.reflection.check
        verdicts: list[Verdict | None]
        if self.verifier is None:
            verdicts = list(self._critique(active))
        else:
            verdicts = [self._verify(item, state["started"]) for item in active]
        for item, verdict in zip(active, verdicts, strict=True):
            if verdict is None:  # the verifier crashed; _verify ended the item
                continue
            detail: dict[str, Any] = {"round": item.round, "method": method, "ok": verdict.ok,
                                      "feedback": verdict.feedback}  # fmt: skip
            if verdict.rows is not None:
                detail["rows"] = json_safe_rows(verdict.rows)
            item.trace.add("check", **detail)
            if verdict.ok:
                fixed = verdict.fixed if self.reflection.normalize and verdict.fixed is not None else None
                item.finish(
                    item.draft if fixed is None else fixed, "passed", state["started"], rounds=item.round
                )
            elif item.round >= self.reflection.max_rounds:
                item.finish(item.draft, "max_rounds", state["started"], rounds=item.round)
            else:
                item.feedback = verdict.feedback
        return {"items": state["items"]}

    def _critique(self, items: list[_Item]) -> list[Verdict]:
        prompts = [
            [Message("system", REVIEWER_SYSTEM_PROMPT),
             Message("user", _replace(self.reflection.critique_template,
                                      question=self.user_message(item.question), answer=item.draft))]
            for item in items
        ]  # fmt: skip
        completions = self.backend.generate(prompts, self.config.gen_params())
        verdicts = []
        for item, completion in zip(items, completions, strict=True):
            item.record(completion)
            verdicts.append(parse_critique(completion.text))
        return verdicts

    def _verify(self, item: _Item, started: float) -> Verdict | None:
        assert self.verifier is not None
        try:
            return self.verifier.check(item.draft, item.question)
        except Exception as exc:
            # A verifier must not take the whole batch down: end this question with its
            # current draft, and keep the error in the trace and the log.
            logger.warning("verifier %r failed on question %s", self.reflection.check, item.question.id,
                           exc_info=True)  # fmt: skip
            item.trace.add("check", round=item.round, method=self.reflection.check, ok=None,
                           error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            item.finish(item.draft, "check_error", started, rounds=item.round)
            return None

    def _revise(self, state: _State) -> dict[str, Any]:
        active = [item for item in state["items"] if not item.done]
        conversations = [
            [*item.conversation, Message("assistant", item.draft),
             Message("user", _replace(self.reflection.revise_template, feedback=item.feedback))]
            for item in active
        ]  # fmt: skip
        completions = self.backend.generate(conversations, self.config.gen_params())
        for item, completion in zip(active, completions, strict=True):
            item.record(completion)
            item.round += 1
            item.draft = completion.text
            item.trace.add(
                "revise", round=item.round, draft=completion.text, finish_reason=completion.finish_reason
            )
        return {"items": state["items"]}

    # ---- answering -----------------------------------------------------------------
    def answer(self, questions: Sequence[Question]) -> list[Answer]:
        if not questions:
            return []
        items = [_Item(question=q, conversation=self.conversation(q)) for q in questions]
        state: _State = {"items": items, "started": time.perf_counter()}
        self._graph().invoke(state, {"recursion_limit": 2 * self.reflection.max_rounds + 5})
        return [item.to_answer(self.backend.model_id, item.draft) for item in items]

    def cost(self) -> StrategyCost:
        """A draft, a check per round (free for a verifier), and about half the answers revised."""
        check_calls = 1 if self.verifier is None else 0
        revisions = 0.5 * (self.reflection.max_rounds - 1)
        calls = 1 + check_calls + revisions * (1 + check_calls)
        answer_tokens = self.config.max_new_tokens / 2
        prompt = calls * self.base_prompt_tokens() + (calls - 1) * (answer_tokens + 60)
        return StrategyCost(model_calls=calls, prompt_tokens=prompt, completion_tokens=calls * answer_tokens)

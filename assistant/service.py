"""The one service API that the CLI, the UI, the runner and the server call.

Everything that answers a question goes through here: a strategy is built from a config
(a strategy name, a YAML file or a mapping) over a backend named by a model reference,
so a model, a setting or a strategy behaves the same wherever it is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.backends.load import build_backend
from assistant.backends.streaming import Sink, stream_to
from assistant.errors import ConfigError
from assistant.models.refs import parse_model_ref
from assistant.settings import Settings
from assistant.strategies.base import (
    BaseStrategy,
    StrategyConfig,
    parse_config,
    strategy_class,
    strategy_names,
)
from assistant.types import Answer, Question

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend

StrategySpec = StrategyConfig | dict[str, Any] | str | Path | None


def get_backend(model: str | None, settings: Settings) -> LLMBackend:
    """A backend for ``model``; local models are loaded once per process and reused."""
    ref = parse_model_ref(model, settings)
    if ref.kind == "fake":
        return build_backend(ref, settings)
    key = (ref.text, settings.fingerprint())
    if key not in _BACKENDS:
        if len(_BACKENDS) >= _MAX_CACHED_BACKENDS:
            _BACKENDS.pop(next(iter(_BACKENDS)))
        _BACKENDS[key] = build_backend(ref, settings)
    return _BACKENDS[key]


# Loaded models by (reference, settings); a few at most, oldest dropped first.
_BACKENDS: dict[tuple[str, str], LLMBackend] = {}
_MAX_CACHED_BACKENDS = 3


def strategy_data(spec: StrategySpec) -> tuple[dict[str, Any], str]:
    """A strategy spec as a mapping, and where it came from (for error messages)."""
    if spec is None:
        return {"strategy": "prompt"}, "default strategy"
    if isinstance(spec, StrategyConfig):
        return spec.to_dict(), f"{spec.strategy} config"
    if isinstance(spec, dict):
        return dict(spec), "strategy config"
    text = str(spec)
    if text in strategy_names():
        return {"strategy": text}, f"strategy {text!r}"
    path = Path(text)
    if path.suffix in {".yaml", ".yml", ".json"}:
        if not path.is_file():
            raise ConfigError(f"strategy config not found: {path}")
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a strategy config is a mapping")
        return data, str(path)
    raise ConfigError(
        f"unknown strategy {text!r}",
        hint=f"use one of {', '.join(strategy_names())} or a YAML strategy config",
    )


def build_strategy(
    spec: StrategySpec,
    settings: Settings,
    *,
    backend: LLMBackend | None = None,
    **overrides: Any,
) -> BaseStrategy:
    """A ready strategy from a spec; ``overrides`` (flags) win over the spec's values."""
    data, origin = strategy_data(spec)
    data.update({key: value for key, value in overrides.items() if value is not None})
    cls = strategy_class(str(data.get("strategy", "prompt")))
    config = parse_config(cls, data, origin)
    return cls(config, backend or get_backend(config.model, settings), settings)


def answer_questions(
    questions: Sequence[Question],
    spec: StrategySpec = None,
    *,
    settings: Settings,
    backend: LLMBackend | None = None,
    log_source: str | None = None,
    session_id: str | None = None,
    **overrides: Any,
) -> list[Answer]:
    """Answer questions with a strategy: the one path for ask, UI, runner and server.
    ``log_source`` (chat, api, cli): the answers go to a user and are written to the answer log
    (``assistant.monitoring``); None (evaluation, decisions): nothing is logged."""
    strategy = build_strategy(spec, settings, backend=backend, **overrides)
    started = time.perf_counter()
    answers = strategy.answer(list(questions))
    if log_source is not None:
        wall = time.perf_counter() - started
        # One question: the wall time is its latency; a batch's wall time is not, so each
        # answer's own latency_s is logged instead.
        latencies = [wall] if len(answers) == 1 else [a.latency_s for a in answers]
        log_served(strategy, answers, source=log_source, latencies_s=latencies, session_id=session_id)
    return answers


def answer_streaming(
    strategy: BaseStrategy,
    question: Question,
    sink: Sink | None,
    *,
    log_source: str | None = None,
    session_id: str | None = None,
) -> Answer:
    """One answer; a strategy whose response is one generate call's text (``streams``) also
    sends that text to ``sink`` as the model produces it, on the calling thread.
    ``log_source``: as for ``answer_questions``."""
    started = time.perf_counter()
    with stream_to(sink if strategy.streams else None):
        (answer,) = strategy.answer([question])
    if log_source is not None:
        latency = time.perf_counter() - started
        log_served(strategy, [answer], source=log_source, latencies_s=[latency], session_id=session_id)
    return answer


def log_served(
    strategy: BaseStrategy,
    answers: Sequence[Answer],
    *,
    source: str,
    latencies_s: Sequence[float],
    session_id: str | None = None,
) -> None:
    """Write answers ``strategy`` gave a user (``source``: chat, api, cli) to the answer log
    (``assistant.monitoring``), with the strategy's name and knowledge base; nothing when the
    ``answer_log`` setting is off. ``answer_questions``/``answer_streaming`` call it when given a
    ``log_source``; the chat page calls it when its streamed answer is complete."""
    from assistant.monitoring import record_answers

    kb = getattr(strategy.config, "kb", None)
    record_answers(strategy.settings, answers, source=source, latencies_s=latencies_s,
                   strategy=strategy.name, kb=str(kb) if kb else None, session_id=session_id)  # fmt: skip

"""``route``: division of labour between the base model and its fine-tuned adapter.

One model in memory, base + LoRA adapter (``--model <base>+<adapter>``). A router
(``strategies.router``) sends each question either to the adapter (in-domain) or to the base
alone, and the whole batch is answered in one generate call with a per-row adapter choice
(``backends.adapter_rows``: peft's mixed-adapter batches, ``"__base__"`` for the base). So the
in-domain questions get what the fine-tune learnt, and every other question gets the base's
answer exactly: fine-tuning cannot make the model forget what it is never asked to answer.

The router is learnt from the adapter's training data (default: the prepared data its manifest
names; rows tagged ``general`` there count as general) against general questions (default: the
general instruction set Ladder ships). Each answer's trace says where it went, its score and the
threshold, and the router's time per question (the batch's routing time over its questions).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from assistant.backends.adapter_rows import adapter_per_row, mixes_adapters
from assistant.errors import ConfigError
from assistant.strategies.base import BaseStrategy, StrategyConfig, StrategyCost
from assistant.types import Answer, Question, TraceStep

ADAPTER, BASE = "adapter", "base"


def default_general_data() -> Path:
    from assistant.resources import datasets_dir

    return datasets_dir() / "general" / "general_instructions.jsonl"


def adapter_training_data(adapter: Path | None) -> Path | None:
    """The prepared training file an adapter's manifest names (``data.path``/train.jsonl)."""
    if adapter is None:
        return None
    try:
        manifest = json.loads((adapter / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    folder = (manifest.get("data") or {}).get("path")
    if not folder:
        return None
    train = Path(folder) / "train.jsonl"
    return train if train.is_file() else None


@dataclass
class RouteConfig(StrategyConfig):
    strategy: str = "route"
    # In-domain questions (JSONL: prepared chats, instruction/input, user_input); empty: the
    # adapter's own training data, from its manifest.
    in_domain: list[str] = field(default_factory=list)
    # General questions; empty: Ladder's general instruction set.
    general: list[str] = field(default_factory=list)
    embedder: str | None = None  # None: the `embedding_model` setting (the knowledge base's)
    k: int = 5  # neighbours on each side
    threshold: float | None = None  # None: calibrated on a held-out split of the router's data
    validation_fraction: float = 0.25
    max_examples: int = 1000  # per side, a seeded sample
    router_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k <= 0:
            raise ConfigError(f"k must be > 0, got {self.k}")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.max_examples < 4:
            raise ConfigError(f"max_examples must be >= 4, got {self.max_examples}")
        if isinstance(self.in_domain, str):
            self.in_domain = [self.in_domain]
        if isinstance(self.general, str):
            self.general = [self.general]


class RouteStrategy(BaseStrategy):
    name: ClassVar[str] = "route"
    Config: ClassVar[type[StrategyConfig]] = RouteConfig

    def __init__(self, config: StrategyConfig, backend: Any, settings: Any) -> None:
        super().__init__(config, backend, settings)
        if not isinstance(config, RouteConfig):
            raise ConfigError(f"route needs a RouteConfig, got {type(config).__name__}")
        if not mixes_adapters(backend):
            raise ConfigError(
                f"route needs a local model with a LoRA adapter, got {backend.model_id!r}",
                hint="use --model <base>+<adapter>, e.g. qwen2.5-coder-0.5b+demo-ticket-routing-ladder",
            )
        self.route_config = config
        self._router: Any = None

    def training_files(self) -> tuple[list[str], list[str]]:
        config = self.route_config
        in_domain = list(config.in_domain)
        if not in_domain:
            found = adapter_training_data(getattr(self.backend, "adapter", None))
            if found is None:
                raise ConfigError(
                    "route: no in-domain data (in_domain) and the adapter's manifest names none",
                    hint="set in_domain: [train.jsonl] in the strategy config",
                )
            in_domain = [str(found)]
        return in_domain, list(config.general) or [str(default_general_data())]

    def router(self) -> Any:
        if self._router is None:
            from assistant.strategies.router import load_router

            config = self.route_config
            in_domain, general = self.training_files()
            self._router = load_router(
                self.settings, in_domain, general, embedder=config.embedder, k=config.k,
                threshold=config.threshold, validation_fraction=config.validation_fraction,
                max_examples=config.max_examples, seed=config.router_seed,
            )  # fmt: skip
        return self._router

    def answer(self, questions: Sequence[Question]) -> list[Answer]:
        if not questions:
            return []
        router = self.router()
        started = time.perf_counter()
        to_adapter, scores = router.route([q.user_input for q in questions])
        router_ms = (time.perf_counter() - started) * 1000 / len(questions)
        conversations = [self.conversation(q) for q in questions]
        with adapter_per_row(to_adapter):
            completions = self.backend.generate(conversations, self.config.gen_params())
        answers = []
        for question, conversation, completion, use, score in zip(
            questions, conversations, completions, to_adapter, scores, strict=True
        ):
            trace = self.trace_for(question, conversation, completion)
            trace.steps.insert(0, TraceStep("route", {
                "to": ADAPTER if use else BASE, "score": round(score, 4),
                "threshold": round(router.threshold, 4), "router_ms": round(router_ms, 3),
                "batch": len(questions), "embedder": router.report.embedder,
            }))  # fmt: skip
            latency = completion.latency_s + router_ms / 1000
            answers.append(self.make_answer(question, completion, trace=trace, latency_s=latency))
        return answers

    def cost(self) -> StrategyCost:
        """One model call, as prompting; the router's embedding is not a model call."""
        return super().cost()

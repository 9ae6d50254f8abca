"""Prompting rungs: zero-shot (``prompt``) and few-shot (``fewshot``).

Few-shot examples are given as earlier user/assistant turns, which chat models follow
best. They come from a pool (inline, or a JSONL/CSV file with ragas field names) and are
either the first k (``fixed``) or the k most similar to the question (``similar``), by a
CJK-aware lexical similarity that needs no model: TF-IDF over Chinese characters and
bigrams plus lower-cased words, cosine-ranked.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from assistant.errors import ConfigError
from assistant.strategies.base import BaseStrategy, StrategyConfig, StrategyCost
from assistant.types import Message, Question


class PromptStrategy(BaseStrategy):
    """Zero-shot: a system prompt, an answer template and an optional format instruction."""

    name: ClassVar[str] = "prompt"
    streams: ClassVar[bool] = True


@dataclass
class Example:
    user_input: str
    reference: str


@dataclass
class FewShotConfig(StrategyConfig):
    k: int = 3
    selection: str = "fixed"  # "fixed" or "similar"
    examples: list[dict[str, str]] = field(default_factory=list)
    examples_file: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k <= 0:
            raise ConfigError(f"k must be > 0, got {self.k}")
        if self.selection not in {"fixed", "similar"}:
            raise ConfigError(f"selection must be 'fixed' or 'similar', got {self.selection!r}")
        if not self.examples and not self.examples_file:
            raise ConfigError("fewshot needs `examples` or `examples_file`")


def _example(row: dict[str, Any], where: str) -> Example:
    question = row.get("user_input", row.get("question"))
    answer = row.get("reference", row.get("answer"))
    if not question or answer is None:
        raise ConfigError(f"{where}: an example needs user_input and reference (or question and answer)")
    return Example(str(question), str(answer))


def load_examples(config: FewShotConfig) -> list[Example]:
    pool = [_example(row, f"examples[{i}]") for i, row in enumerate(config.examples)]
    if config.examples_file:
        path = Path(config.examples_file)
        if not path.is_file():
            raise ConfigError(f"examples_file not found: {path}")
        if path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                pool += [_example(row, f"{path}:{i + 2}") for i, row in enumerate(csv.DictReader(handle))]
        else:
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
                pool.append(_example(row, f"{path}:{number}"))
    if not pool:
        raise ConfigError("the few-shot example pool is empty")
    return pool


_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u9fff]")


def lexical_terms(text: str) -> Counter[str]:
    """Words, CJK characters and CJK bigrams: similarity without a tokenizer or a model."""
    lowered = text.lower()
    terms: Counter[str] = Counter(_WORD.findall(lowered))
    chars = _CJK.findall(lowered)
    terms.update(chars)
    terms.update(a + b for a, b in itertools.pairwise(chars))
    return terms


class LexicalIndex:
    def __init__(self, texts: list[str]) -> None:
        self.docs = [lexical_terms(t) for t in texts]
        df: Counter[str] = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        n = len(texts)
        self.idf = {term: math.log((n + 1) / (count + 0.5)) + 1 for term, count in df.items()}
        self.vectors = [self._weigh(doc) for doc in self.docs]

    def _weigh(self, terms: Counter[str]) -> dict[str, float]:
        vector = {t: c * self.idf.get(t, 1.0) for t, c in terms.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def rank(self, query: str) -> list[int]:
        q = self._weigh(lexical_terms(query))
        scores = [sum(w * doc.get(t, 0.0) for t, w in q.items()) for doc in self.vectors]
        return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


class FewShotStrategy(BaseStrategy):
    name: ClassVar[str] = "fewshot"
    Config: ClassVar[type[StrategyConfig]] = FewShotConfig
    streams: ClassVar[bool] = True

    def __init__(self, config: StrategyConfig, backend: Any, settings: Any) -> None:
        super().__init__(config, backend, settings)
        assert isinstance(config, FewShotConfig)
        self.fewshot = config
        self.pool = load_examples(config)
        self.index = (
            LexicalIndex([e.user_input for e in self.pool]) if config.selection == "similar" else None
        )

    def pick(self, question: Question) -> list[Example]:
        """k examples, never the question itself (that would leak its answer)."""
        order = self.index.rank(question.user_input) if self.index else range(len(self.pool))
        chosen = []
        for i in order:
            if self.pool[i].user_input.strip() == question.user_input.strip():
                continue
            chosen.append(self.pool[i])
            if len(chosen) == self.fewshot.k:
                break
        return chosen

    def conversation(self, question: Question) -> list[Message]:
        messages = self.system_messages()
        for example in self.pick(question):
            messages.append(Message("user", self.user_message(Question(example.user_input))))
            messages.append(Message("assistant", example.reference))
        return [*messages, Message("user", self.user_message(question))]

    def cost(self) -> StrategyCost:
        k = min(self.fewshot.k, len(self.pool))
        mean_example = sum(len(e.user_input) + len(e.reference) for e in self.pool) / len(self.pool) / 3
        return StrategyCost(model_calls=1, prompt_tokens=self.base_prompt_tokens() + k * (mean_example + 10),
                            completion_tokens=self.config.max_new_tokens / 2)  # fmt: skip

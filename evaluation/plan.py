"""Planning an evaluation: what was asked (``EvalPlan``), one ``Lane`` per strategy, the MCQ
mode, thresholds, and the cache key of an answer.

Everything here runs before the first model call, so every user error (an unknown strategy,
a bad threshold, logprob mode for a strategy that generates) is raised before a run exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.types import Question
from evaluation.items import SuiteItem
from evaluation.metrics.base import Metric
from evaluation.suites.spec import Suite

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend
    from assistant.service import StrategySpec
    from assistant.strategies.base import BaseStrategy

CACHE_VERSION = 1
# The start of an n/a reason for a metric that cannot apply to a strategy (retrieval metrics
# for a strategy that does not retrieve): such a metric has no threshold to miss.
NOT_APPLICABLE = "not applicable"
MODES = ("logprob", "generate")


@dataclass
class EvalPlan:
    """What to evaluate; the CLI, the UI and the decision engine fill one of these."""

    suite: str | Path
    strategies: Sequence[StrategySpec] = ("prompt",)
    model: str | None = None  # None: each strategy's `model`, else the `model` setting
    judge: str | None = None  # judged metrics' model; None: the evaluated model
    no_judge: bool = False  # drop judged metrics: deterministic metrics only
    mode: str | None = None  # MCQ: logprob | generate; None: logprob when every strategy is `prompt`
    fail_under: Mapping[str, float] = field(default_factory=dict)  # overrides the suite's thresholds
    use_cache: bool = True
    resume: bool = True
    kb: str | None = None  # knowledge base for strategies that take one (rag, agent)
    limit: int | None = None  # only the first N items (a quick check)
    # Only the items with these ids, in the suite's order (a decision's tuning slice or the rest
    # of dev); None: every item. An id the suite does not have is a ConfigError.
    items: Sequence[str] | None = None
    # Questions answered again one at a time to measure single-request latency; None: the
    # `latency_sample` setting; 0: measure nothing (a run whose latency no one will read).
    latency_sample: int | None = None


@dataclass
class Lane:
    """One strategy within a run."""

    label: str
    strategy: BaseStrategy
    config: dict[str, Any]
    config_hash: str
    model_key: str
    model_ref: str


def stable_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def model_identity(model: str, settings: Settings) -> str:
    """What makes a model's outputs what they are: the reference plus its files' fingerprints,
    so a re-converted pack, retrained adapter or edited fake script misses the cache."""
    from assistant.models.refs import parse_model_ref

    ref = parse_model_ref(model, settings)
    # "float32 head": exam scores from before the head projected in float32 (bf16 logits,
    # tied options) must not be served from the cache.
    parts: list[Any] = [ref.text, settings.dtype, settings.device, settings.context_overflow,
                        "float32 head", settings.score_recheck_margin]  # fmt: skip
    folders = []
    if ref.kind == "pack":
        folders.append(settings.models_dir / ref.target)
    elif ref.kind == "folder":
        folders.append(Path(ref.target))
    elif ref.kind == "fake" and ref.target:
        parts.append(hashlib.sha256(Path(ref.target).read_bytes()).hexdigest())
    if ref.adapter is not None:
        folders.append(ref.adapter)
    for folder in folders:
        pack = folder / "pack.json"
        if pack.is_file():
            parts.append(pack.read_text(encoding="utf-8"))
        elif folder.is_dir():
            # An adapter's manifest.json is metadata the evaluation itself updates (its
            # `evaluations`): it does not change outputs, so it must not change the cache key.
            files = [p for p in folder.iterdir() if p.is_file() and p.name != "manifest.json"]
            parts.append(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    return stable_hash(parts)[:24]


def build_lanes(plan: EvalPlan, settings: Settings, backend: LLMBackend | None = None) -> list[Lane]:
    """One lane per strategy spec: the built strategy, its config, its label and its model identity."""
    from assistant.knowledge.kb import KnowledgeBase
    from assistant.service import build_strategy, strategy_data
    from assistant.strategies.base import strategy_class

    if not plan.strategies:
        raise ConfigError("no strategy to evaluate", hint="pass --strategy NAME (or a YAML config)")
    lanes: list[Lane] = []
    for spec in plan.strategies:
        data, _origin = strategy_data(spec)
        cls = strategy_class(str(data.get("strategy", "prompt")))
        if plan.model:
            data["model"] = plan.model
        if plan.kb and "kb" in {f for f in cls.Config.__dataclass_fields__}:
            data["kb"] = plan.kb
        strategy = build_strategy(data, settings, backend=backend)
        config = strategy.config.to_dict()
        model_ref = config.get("model") or settings.model
        label = Path(str(spec)).stem if str(spec).endswith((".yaml", ".yml", ".json")) else cls.name
        base, n = label, 2
        while any(lane.label == label for lane in lanes):
            label, n = f"{base}-{n}", n + 1
        kb = config.get("kb")
        identity = {
            "model": "injected:" + strategy.backend.model_id
            if backend
            else model_identity(model_ref, settings),
            "kb": KnowledgeBase.fingerprint(kb, settings) if kb else None,
        }
        lanes.append(
            Lane(label, strategy, config, stable_hash(config)[:16], stable_hash(identity)[:24], model_ref)
        )
    return lanes


def pick_mode(suite: Suite, lanes: Sequence[Lane], requested: str | None) -> str:
    if suite.spec.kind != "mcq":
        if requested == "logprob":
            raise ConfigError("logprob mode is for multiple-choice suites", hint="drop --mode")
        return "generate"
    if requested is not None and requested not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {requested!r}")
    only_prompt = all(lane.strategy.name == "prompt" for lane in lanes)
    mode = requested or ("logprob" if only_prompt else "generate")
    if mode == "logprob" and not only_prompt:
        others = ", ".join(lane.label for lane in lanes if lane.strategy.name != "prompt")
        raise ConfigError(
            f"logprob mode scores the suite's prompt directly, so it fits the prompt strategy only "
            f"(not {others})",
            hint="use --mode generate to let every strategy answer in free text",
        )
    return mode


def select_items(items: Sequence[SuiteItem], ids: Sequence[str] | None) -> list[SuiteItem]:
    """The items whose ids are in ``ids``, in the suite's order; ``None``: all of them."""
    if ids is None:
        return list(items)
    wanted = set(ids)
    unknown = wanted - {i.question.id for i in items}
    if unknown:
        raise ConfigError(f"{len(unknown)} item id(s) not in the suite, e.g. {sorted(unknown)[0]!r}")
    return [i for i in items if i.question.id in wanted]


def merge_thresholds(suite: Suite, fail_under: Mapping[str, float]) -> dict[str, float]:
    labels = {m.label: m for m in suite.metrics}
    merged = dict(suite.spec.thresholds)
    for label, value in fail_under.items():
        if label not in labels:
            raise ConfigError(
                f"--fail-under names {label!r}, which is not among the suite's metrics",
                hint=f"metrics: {', '.join(labels)}",
            )
        bounds = labels[label].bounds
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise ConfigError(f"--fail-under {label}={value} is outside {bounds[0]:g}..{bounds[1]:g}")
        merged[label] = value
    return merged


def split_metrics(metrics: Sequence[Metric], plan: EvalPlan) -> tuple[list[Metric], list[Metric]]:
    plain = [m for m in metrics if not getattr(m, "needs_judge", False)]
    judged = [m for m in metrics if getattr(m, "needs_judge", False)]
    if plan.no_judge and not plain:
        raise ConfigError("--no-judge leaves no metric: every metric of this suite needs a judge")
    return plain, judged


def answer_key(lane: Lane, item: SuiteItem, mode: str) -> str:
    question = item.question
    return stable_hash(
        {
            "v": CACHE_VERSION,
            "config": lane.config,
            "model": lane.model_key,
            "mode": mode,
            "item": [item.prompt, question.user_input, question.choices],
        }
    )


def question_for(item: SuiteItem) -> Question:
    q = item.question
    prompt = item.prompt if item.prompt and item.prompt != q.user_input else None
    return Question(
        q.user_input,
        id=q.id,
        reference=q.reference,
        reference_contexts=q.reference_contexts,
        choices=q.choices,
        tags=list(q.tags),
        prompt=prompt,
    )

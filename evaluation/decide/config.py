"""The decision config (YAML): which suites to decide and confirm on, the targets, the limits,
the rungs to climb, and what the fine-tuning rung may use.

    name: tickets                    # default: the file name (the folder's for decision.yaml)
    model: smollm2-135m              # default: the `model` setting
    suites:
      dev: suites/tickets_dev.yaml   # the rungs are compared and chosen on this split
      test: suites/tickets_test.yaml # the choice is confirmed on this held-out split
      general: suites/general.yaml   # optional: general ability, for the forgetting check
    targets:                         # every target must hold (lower CI bound for >=)
      exact_match: ">= 0.80"
      unparseable: "<= 0.05"         # a bare number means >= (<= for lower-is-better metrics)
    limits:
      max_cost_per_1k: 0.50          # in the price table's currency
      max_p95_latency_s: 5.0
    rungs: [prompt, fewshot, reflection, rag, agent, finetune]   # the default; mappings allowed,
                                     # with a model of their own: {strategy: prompt, model: NAME}
    try_larger_model: true           # default rungs: also prompt on the next larger local pack
    order: cost                      # cost (sort by the strategies' stated cost) | given
    confidence: 0.95
    kb: handbook                     # knowledge base for rag / agent (they are skipped without one)
    examples: fewshot_pool.jsonl     # few-shot pool (fewshot is skipped without one)
    allow_finetune: false            # true: train when every cheaper rung misses
    finetune:
      data: data/tickets             # a `ladder finetune prepare` folder, or
      raw: [tickets.jsonl]           # raw file(s), prepared with the `prepare` options below
      prepare: {general: none, stratify_by: label}
      train: {epochs: 2, learning_rate: 5.0e-4}
      adapter: tickets-ladder        # default: <name>-ladder
      strategy: prompt               # how the fine-tuned model is asked
      min_examples: 100              # readiness: training examples needed
      max_forgetting: 0.05           # the general suite's main metric may drop at most this much
      max_minutes: 30                # estimated longer: recommended with the command, not trained
      try_rag: true                  # also evaluate the fine-tuned model under rag when a kb is set
    search:                          # a rung that misses as written gets its knobs searched (default on)
      max_attempts: 6                # per rung, the written config included
      max_minutes: 10                # for the whole decision's search
      tuning_fraction: 0.4           # searched on this share of dev, judged on the rest
      slices: 1                      # 2+: repeat on other slices, report whether the verdict holds
    learning_curve: true             # nothing meets: fine-tune / few-shot at 25 / 50 / 100 % of the data
    judge: qwen2.5-coder-1.5b        # the judge of judged metrics, for every rung (default: `model`)
    judge_min_agreement: 0.70        # a judged target needs a judge this close to people
                                     # (`ladder judge check`; checked before the rungs run)

Every mistake raises ``ConfigError`` naming the file and key before anything runs.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

FINETUNE = "finetune"
DEFAULT_RUNGS = ("prompt", "fewshot", "reflection", "rag", "agent", FINETUNE)
NEEDS_KB = ("rag",)  # the agent works without a kb (calculator), so it is not skipped for lack of one
# Needing more than 25x the items (or, on a learning curve, the examples) measured: the
# difference is too small to matter, or out of reach. Shared by diagnose and curve.
TOO_CLOSE = 25
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# File names that say nothing about the decision: an unnamed config in one is named after its folder.
_GENERIC_STEMS = {"decision", "decide", "config", "ladder"}
_TARGET = re.compile(r"^\s*(>=|<=|≥|≤)?\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")


@dataclass(frozen=True)
class Target:
    metric: str
    op: str  # ">=" or "<="; "" until the plan knows which way the metric points
    value: float

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return value <= self.value if self.op == "<=" else value >= self.value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass
class RungSpec:
    """One rung: a strategy config, or the fine-tuning rung."""

    label: str
    strategy: str  # a registered strategy name, or "finetune"
    config: dict[str, Any] = field(default_factory=dict)  # the strategy config (without model)
    model: str | None = None  # this rung's model; None: the decision's

    @property
    def is_finetune(self) -> bool:
        return self.strategy == FINETUNE


# A decision's fine-tune recipe when its config sets none (keys it sets win), chosen on a task
# other than the demo (support tickets: 360 examples, 8 labels; benchmarks/recipe.py, in
# docs/benchmarks.md) by a rule fixed before the runs: the best exact match among recipes that
# train within 30 minutes on 2 CPU cores and lose at most 0.05 general ability, the cheaper of
# two within 0.02. `ladder finetune prepare/train` keep their own (longer) defaults.
# Measured (exact match on 120 held-out tickets; minutes): ratio 1, 2 epochs, lr 2e-4: 0.983,
# 11.2; the same at lr 5e-4: 1.000, 14.5; ratio 0.5, 1 epoch, lr 5e-4: 0.967, 4.4; the library
# defaults (ratio 5, 3 epochs): estimated 30.4, not trained. The first and second tie (within
# 0.02): the cheaper, the first.
DEFAULT_PREPARE: dict[str, Any] = {"general": "default", "ratio": 1.0, "split": "0.9,0.1,0"}
DEFAULT_TRAIN: dict[str, Any] = {"epochs": 2, "learning_rate": 2.0e-4}


# The router knobs `finetune.route` may set (the route strategy's; see decide/route.py).
ROUTER_KEYS = ("k", "embedder", "general", "max_examples", "threshold", "validation_fraction", "router_seed")


@dataclass
class FinetuneSpec:
    data: Path | None = None
    raw: list[Path] = field(default_factory=list)
    prepare: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PREPARE))
    train: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRAIN))
    adapter: str | None = None
    strategy: str | dict[str, Any] = "prompt"  # how the fine-tuned model is asked: a name or a config
    min_examples: int = 100
    min_per_label: int = 10
    max_duplicate_rate: float = 0.10
    max_forgetting: float = 0.05
    # Steps of a probe training run that measures tokens/s on this machine when the store has no
    # run of this base model yet (0: no probe; the estimate then falls back or says n/a).
    probe_steps: int = 2
    # The longest training (estimated, on this machine) a decision starts by itself; longer
    # becomes a recommendation with the estimate and the exact command. None: no limit. 30
    # minutes fits a 2-core CPU: the demo's routing fine-tune (61.7k tokens on a 0.5B model)
    # trains within it, a three-epoch run over 800+ examples does not.
    max_minutes: float | None = 30.0
    try_rag: bool = True
    # The route rung (base + adapter, a router per question) when the fine-tune fails or nearly
    # fails the forgetting check: true, false, or a mapping of router knobs (decide/route.py).
    route: bool | dict[str, Any] = True

    @property
    def has_data(self) -> bool:
        return self.data is not None or bool(self.raw)


@dataclass
class SearchSpec:
    """``search:`` in a decision config."""

    enabled: bool = True
    # Per rung, the configuration as written included (it costs nothing: its dev answers exist).
    max_attempts: int = 6
    # For the whole decision's search; the rungs searched later get what is left. None: no limit.
    max_minutes: float | None = 10.0
    # The share of dev items the search tunes on; the rest judge the chosen configuration.
    tuning_fraction: float = 0.4
    # Dev splits smaller than this are not split (too few items on either side to mean much).
    min_items: int = 20
    # More than 1: the search is repeated on differently seeded slices and the report says
    # whether the verdict depends on the slice (a nested check; each slice costs a search).
    slices: int = 1
    seed: int = 0
    # Only these rungs (labels or strategy names); None: every rung with knobs to search.
    rungs: list[str] | None = None

    def covers(self, label: str, strategy: str) -> bool:
        return self.enabled and (self.rungs is None or label in self.rungs or strategy in self.rungs)


@dataclass
class DecisionConfig:
    name: str
    dev: Path
    test: Path
    targets: list[Target]
    rungs: list[RungSpec]
    general: Path | None = None
    model: str | None = None
    max_cost_per_1k: float | None = None
    max_p95_latency_s: float | None = None
    order: str = "cost"
    confidence: float = 0.95
    kb: str | None = None
    examples: Path | None = None
    allow_finetune: bool = False
    finetune: FinetuneSpec = field(default_factory=FinetuneSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    # When nothing meets: score the fine-tune (or few-shot) rung with 25 / 50 % of its data too,
    # and say about how many examples would reach the target (see decide.learning).
    learning_curve: bool = True
    # With the default rungs: also the plain prompt on the next larger local pack of the base's
    # family (skipped, with the pull command, when it is not installed).
    try_larger_model: bool = True
    judge: str | None = None
    # A judged target is refused when its judge's agreement with people (``ladder judge check``,
    # evaluation.calibration) is below this; 0 turns the check off.
    judge_min_agreement: float = 0.70
    no_judge: bool = False
    limit: int | None = None  # only the first N items of each suite (a quick look)
    language: str | None = None  # en | zh; None: the `language` setting
    path: Path | None = None
    explicit_rungs: bool = False  # rungs were listed (missing inputs are errors, not skips)

    @property
    def alpha(self) -> float:
        """Significance level of the paired tests: 1 - confidence."""
        return 1 - self.confidence

    def rung(self, label: str) -> RungSpec:
        return next(r for r in self.rungs if r.label == label)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fail(where: str, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{where}: {message}", hint=hint)


def parse_target(metric: str, raw: Any, where: str) -> Target:
    """``">= 0.8"``, ``"<= 0.05"`` or a bare number (its direction is the metric's, set by the plan)."""
    if isinstance(raw, bool):
        raise _fail(where, f"targets.{metric}: {raw!r} is not a number", 'write e.g. ">= 0.8"')
    if isinstance(raw, int | float):
        return Target(metric, "", float(raw))
    match = _TARGET.match(str(raw))
    if not match:
        raise _fail(where, f"targets.{metric}: cannot read {raw!r}", 'write ">= 0.8", "<= 0.05" or a number')
    op = {"≥": ">=", "≤": "<="}.get(match.group(1) or "", match.group(1) or "")
    return Target(metric, op, float(match.group(2)))


RELATIVE_KEYS = ("examples_file", "database")  # strategy keys that name files: relative to the config


def parse_rung(raw: Any, index: int, where: str, base: Path = Path(".")) -> RungSpec:
    from assistant.strategies.base import strategy_names

    known = [*strategy_names(), FINETUNE]
    if isinstance(raw, str):
        data: dict[str, Any] = {"strategy": raw}
    elif isinstance(raw, dict):
        data = dict(raw)
    else:
        raise _fail(where, f"rungs[{index}] must be a strategy name or a mapping, got {raw!r}")
    if "config" in data:  # a strategy YAML, with the mapping's other keys over it
        from assistant.service import strategy_data

        path = Path(str(data.pop("config"))).expanduser()
        loaded, _ = strategy_data(path if path.is_absolute() else base / path)
        data = {**loaded, **data}
    for key in RELATIVE_KEYS:
        if isinstance(data.get(key), str) and not Path(data[key]).expanduser().is_absolute():
            data[key] = str(base / data[key])
    named = str(data.pop("name", "") or "")
    strategy = str(data.get("strategy", named))
    if strategy not in known:
        raise _fail(where, f"rungs[{index}]: unknown strategy {strategy!r}", f"known: {', '.join(known)}")
    data["strategy"] = strategy
    model = data.pop("model", None)
    if model is not None and (not isinstance(model, str) or not model.strip() or "+" in model):
        raise _fail(
            where,
            f"rungs[{index}]: model must be a model reference, got {model!r}",
            "a pack name, a folder or openai:<model>@<url>; a fine-tuned model is the finetune rung",
        )
    if strategy == FINETUNE and (set(data) - {"strategy"} or model is not None):
        raise _fail(where, f"rungs[{index}]: finetune takes its settings from `finetune:`")
    label = named or (f"{strategy}@{model}" if model is not None else strategy)
    return RungSpec(label, strategy, data, model)


def _path(value: Any, base: Path, key: str, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key} must be a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _only_fields(raw: dict[str, Any], spec: Any, section: str, where: str) -> None:
    """A ``section`` mapping names only fields of the dataclass ``spec``."""
    known = {f.name for f in dataclasses.fields(spec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(
            where, f"unknown {section} key(s): {', '.join(unknown)}", f"known: {', '.join(sorted(known))}"
        )


def _finetune_spec(raw: Any, base: Path, where: str) -> FinetuneSpec:
    if raw is None:
        return FinetuneSpec()
    if not isinstance(raw, dict):
        raise _fail(where, "finetune must be a mapping")
    _only_fields(raw, FinetuneSpec, "finetune", where)
    values = dict(raw)
    if values.get("data") is not None:
        values["data"] = _path(values["data"], base, "finetune.data", where)
    raw_files = values.get("raw") or []
    values["raw"] = [
        _path(p, base, "finetune.raw", where)
        for p in (raw_files if isinstance(raw_files, list) else [raw_files])
    ]
    spec = FinetuneSpec(**values)
    if spec.data is not None and spec.raw:
        raise _fail(where, "finetune: give `data` (a prepared folder) or `raw` (files to prepare), not both")
    for key in ("prepare", "train"):
        if not isinstance(getattr(spec, key), dict):
            raise _fail(where, f"finetune.{key} must be a mapping")
    if not isinstance(spec.route, bool | dict):
        raise _fail(where, "finetune.route must be true, false or a mapping of router settings")
    if isinstance(spec.route, dict):
        unknown = sorted(set(spec.route) - set(ROUTER_KEYS))
        if unknown:
            raise _fail(
                where,
                f"finetune.route: unknown key(s) {', '.join(unknown)}",
                f"known: {', '.join(ROUTER_KEYS)}",
            )
    spec.prepare = {**DEFAULT_PREPARE, **spec.prepare}
    spec.train = {**DEFAULT_TRAIN, **spec.train}
    from finetune.data.prepare import PrepareConfig, prepare_options
    from finetune.train.config import TrainConfig

    try:
        TrainConfig.from_dict(spec.train)
    except (ConfigError, TypeError) as exc:
        raise _fail(where, f"finetune.train: {exc}") from None
    try:  # the options are checked now, not after the cheaper rungs have run
        PrepareConfig(domain=(Path("-"),), out=Path("-"), **prepare_options(spec.prepare))
    except (ConfigError, TypeError, ValueError) as exc:
        raise _fail(where, f"finetune.prepare: {exc}") from None
    if spec.min_examples < 1 or spec.min_per_label < 0 or spec.probe_steps < 0:
        raise _fail(where, "finetune.min_examples must be >= 1, min_per_label and probe_steps >= 0")
    if not 0 <= spec.max_forgetting <= 1 or not 0 <= spec.max_duplicate_rate <= 1:
        raise _fail(where, "finetune.max_forgetting and max_duplicate_rate must be in [0, 1]")
    if spec.max_minutes is not None and not spec.max_minutes > 0:
        raise _fail(where, "finetune.max_minutes must be > 0 (or null: no limit)")
    return spec


def _search_spec(raw: Any, where: str) -> SearchSpec:
    """``search: false`` (off), ``true``/absent (the defaults) or a mapping of ``SearchSpec`` keys."""
    if raw is None or raw is True:
        return SearchSpec()
    if raw is False:
        return SearchSpec(enabled=False)
    if not isinstance(raw, dict):
        raise _fail(where, "search must be true, false or a mapping")
    _only_fields(raw, SearchSpec, "search", where)
    try:
        spec = SearchSpec(**raw)
    except TypeError as exc:
        raise _fail(where, f"search: {exc}") from None
    ints = {"max_attempts": 1, "min_items": 2, "slices": 1}
    for key, low in ints.items():
        value = getattr(spec, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _fail(where, f"search.{key} must be an integer >= {low}, got {value!r}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int):
        raise _fail(where, f"search.seed must be an integer, got {spec.seed!r}")
    fraction = spec.tuning_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.1 <= fraction <= 0.9:
        raise _fail(where, f"search.tuning_fraction must be in [0.1, 0.9], got {fraction!r}")
    minutes = spec.max_minutes
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0
    ):
        raise _fail(where, "search.max_minutes must be > 0 (or null: no limit)")
    if spec.rungs is not None and (
        not isinstance(spec.rungs, list) or not all(isinstance(r, str) for r in spec.rungs)
    ):
        raise _fail(where, "search.rungs must be a list of rung labels or strategy names")
    spec.enabled = bool(spec.enabled)
    return spec


_TOP_KEYS = {
    "name",
    "model",
    "suites",
    "targets",
    "limits",
    "rungs",
    "order",
    "confidence",
    "kb",
    "examples",
    "allow_finetune",
    "finetune",
    "judge",
    "judge_min_agreement",
    "no_judge",
    "limit",
    "language",
    "search",
    "learning_curve",
    "try_larger_model",
}


def decision_config_from_dict(data: dict[str, Any], base: Path, where: str) -> DecisionConfig:
    """Validate a decision config mapping; paths are relative to ``base``."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(where, f"unknown key(s): {', '.join(unknown)}", f"known: {', '.join(sorted(_TOP_KEYS))}")
    suites = data.get("suites")
    if not isinstance(suites, dict) or "dev" not in suites or "test" not in suites:
        raise _fail(where, "suites must name `dev` and `test` (and optionally `general`)")
    extra = sorted(set(suites) - {"dev", "test", "general"})
    if extra:
        raise _fail(where, f"unknown suite role(s): {', '.join(extra)}", "use dev, test and general")
    targets_raw = data.get("targets")
    if not isinstance(targets_raw, dict) or not targets_raw:
        raise _fail(
            where, "targets must map at least one metric to a bound", 'e.g. targets: {accuracy: ">= 0.8"}'
        )
    targets = [parse_target(str(k), v, where) for k, v in targets_raw.items()]
    limits = data.get("limits") or {}
    if not isinstance(limits, dict) or set(limits) - {"max_cost_per_1k", "max_p95_latency_s"}:
        raise _fail(where, "limits takes max_cost_per_1k and max_p95_latency_s")
    for key, value in limits.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise _fail(where, f"limits.{key} must be a number >= 0, got {value!r}")
    bar = data.get("judge_min_agreement", 0.70)
    if isinstance(bar, bool) or not isinstance(bar, int | float) or not 0 <= bar <= 1:
        raise _fail(
            where,
            f"judge_min_agreement must be in [0, 1], got {bar!r}",
            "0.70 is the default; 0 turns the check off",
        )
    explicit = "rungs" in data
    rungs_raw = data.get("rungs", list(DEFAULT_RUNGS))
    if not isinstance(rungs_raw, list) or not rungs_raw:
        raise _fail(
            where, "the rung list is empty", f"list rungs, e.g. {list(DEFAULT_RUNGS)}, or leave `rungs` out"
        )
    rungs = [parse_rung(r, i, where, base) for i, r in enumerate(rungs_raw)]
    labels = [r.label for r in rungs]
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate:
        raise _fail(where, f"two rungs are named {duplicate!r}", "give one of them a `name`")
    if sum(r.is_finetune for r in rungs) > 1:
        raise _fail(where, "only one finetune rung")
    order = str(data.get("order", "cost"))
    if order not in ("cost", "given"):
        raise _fail(where, f"order must be cost or given, got {order!r}")
    confidence = data.get("confidence", 0.95)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0.5 <= confidence < 1:
        raise _fail(where, f"confidence must be in [0.5, 1), got {confidence!r}")
    language = data.get("language")
    if language is not None and language not in ("en", "zh"):
        raise _fail(where, f"language must be en or zh, got {language!r}")
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise _fail(where, f"limit must be a positive integer, got {limit!r}")
    name = data.get("name") or "decision"
    if not isinstance(name, str) or not _NAME.match(name):
        # The name is a folder under LADDER_HOME/decisions and part of the adapter's name.
        raise _fail(
            where,
            f"bad decision name {name!r}",
            "use up to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
        )
    return DecisionConfig(
        name=name,
        dev=_path(suites["dev"], base, "suites.dev", where),
        test=_path(suites["test"], base, "suites.test", where),
        general=_path(suites["general"], base, "suites.general", where) if suites.get("general") else None,
        targets=targets,
        rungs=rungs,
        model=data.get("model"),
        max_cost_per_1k=limits.get("max_cost_per_1k"),
        max_p95_latency_s=limits.get("max_p95_latency_s"),
        order=order,
        confidence=float(confidence),
        kb=data.get("kb"),
        examples=_path(data["examples"], base, "examples", where) if data.get("examples") else None,
        allow_finetune=bool(data.get("allow_finetune", False)),
        finetune=_finetune_spec(data.get("finetune"), base, where),
        search=_search_spec(data.get("search"), where),
        learning_curve=bool(data.get("learning_curve", True)),
        try_larger_model=bool(data.get("try_larger_model", True)),
        judge=data.get("judge"),
        judge_min_agreement=float(bar),
        no_judge=bool(data.get("no_judge", False)),
        limit=limit,
        language=language,
        explicit_rungs=explicit,
    )


def load_decision_config(path: str | Path) -> DecisionConfig:
    """Read and validate a decision YAML (suites' contents are checked later, by ``plan``)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"decision config not found: {path}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a decision config is a YAML mapping (suites, targets, rungs, ...)")
    if not data.get("name"):
        # Two unnamed decisions must not share a folder and an adapter: name it after its file.
        data = {**data, "name": default_name(path)}
    config = decision_config_from_dict(data, path.parent, str(path))
    config.path = path
    return config


def default_name(path: Path) -> str:
    """``tickets.yaml`` -> ``tickets``; ``port_facts/decision.yaml`` -> ``port_facts`` (a generic
    file name says nothing); characters a folder or adapter name cannot have become ``-``."""
    stem = path.stem
    if stem.lower() in _GENERIC_STEMS and path.resolve().parent.name:
        stem = path.resolve().parent.name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).lstrip("._-")[:64]
    return name or "decision"

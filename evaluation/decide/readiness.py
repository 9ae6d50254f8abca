"""Is the fine-tuning rung ready to run, and what would it take?

The rules (each a ``Check`` in the verdict, with the measured value):

- **enough examples**: at least ``finetune.min_examples`` domain training examples (default
  100; general-ability examples mixed in by ``prepare`` do not count), and for a
  classification set (at most 20 distinct replies) at least ``min_per_label`` (default 10)
  per label: a LoRA learns a label it has seen a handful of times poorly.
- **duplicates**: exact plus near duplicates (``finetune.data.dedup``, MinHash at Jaccard
  0.85) at most ``max_duplicate_rate`` (default 10%) of the examples.
- **no leakage into the test split**: no training example matches a test question
  (normalised exact or near match). Leakage is refused as bad input before anything runs;
  an overlap with the dev split is reported (it flatters the dev score).
- **a local base model**: fine-tuning needs weights (a pack or a folder), not an endpoint.
- **time budget**: the estimated training time on this machine at most ``finetune.max_minutes``
  (default 30); a longer run is recommended with the estimate and the exact command, not started.

Training time and cost are estimated from the tokens training will see
(``planned_train_tokens``: each example through the base model's chat template, the split's
training share, the general mix, the ``max_seq_len`` cut, the epochs):

- on **this machine** from the tokens/s of earlier training runs in the store (the same base
  model preferred; without one, when the decision will not train or has a time budget to
  check, a probe run of ``finetune.probe_steps`` steps measures it and stays in the store),
  charged at the price table's compute rate;
- on a **GPU** from ``GPU_TABLE``: tokens/s = MFU x peak dense BF16 FLOP/s / (4 x parameters)
  (a LoRA step costs about a forward pass, 2N FLOPs per token, plus the backward pass through
  the activations, 2N; the frozen weights get no gradient). Peak FLOP/s are NVIDIA's datasheet
  numbers; the MFU (model FLOPs utilisation) is an assumption: 0.10 below 1B parameters (a
  small model cannot keep a big GPU busy), 0.30 above. Hourly prices are typical on-demand
  cloud prices (an assumption, late 2025). Loading the model and tokenizing are left out (a
  minute or so either way). Treat both as order-of-magnitude estimates.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.settings import Settings
from evaluation.decide.config import DecisionConfig
from evaluation.decide.result import NON_BLOCKING, Check, Readiness
from finetune.data.load import Example

# GPU, peak dense BF16 TFLOP/s (NVIDIA datasheets), assumed on-demand USD per hour.
GPU_TABLE: tuple[tuple[str, float, float], ...] = (
    ("NVIDIA L4", 121.0, 0.80),
    ("NVIDIA A100 80GB", 312.0, 3.00),
    ("NVIDIA H100 SXM", 989.0, 4.50),
)
SMALL_MODEL_PARAMS, SMALL_MFU, LARGE_MFU = 1e9, 0.10, 0.30
MAX_LABELS = 20


def load_training_examples(config: DecisionConfig) -> list[Example]:
    """The training examples the finetune rung would use (prepared ``train.jsonl``, or the raw files)."""
    from evaluation.suites.source import SuiteFiles
    from finetune.data.load import load_file

    spec = config.finetune
    if spec.data is not None:
        from finetune.train.data import locate_data

        source = locate_data(spec.data)
        return load_file(source.train_file, "auto", SuiteFiles())
    fmt = str(spec.prepare.get("format", "auto"))
    return [e for path in spec.raw for e in load_file(path, fmt, SuiteFiles())]


def _labels(examples: Sequence[Example]) -> Counter[str] | None:
    from evaluation.metrics.lexical import normalize

    replies = Counter(normalize(e.response) for e in examples if not e.is_text)
    if not replies or len(replies) > MAX_LABELS or len(replies) * 2 > len(examples):
        return None
    return replies


def duplicate_rate(examples: Sequence[Example]) -> tuple[float, int]:
    from finetune.data.dedup import Deduplicator

    result = Deduplicator().run(list(examples))
    dropped = len(result.exact) + len(result.near)
    return (dropped / len(examples) if examples else 0.0), dropped


def model_params(folder: Path) -> float | None:
    """Parameters of a transformers folder, from its safetensors' size and dtype."""
    files = list(folder.glob("*.safetensors"))
    if not files:
        return None
    dtype = "float32"
    config = folder / "config.json"
    if config.is_file():
        dtype = str(json.loads(config.read_text(encoding="utf-8")).get("torch_dtype") or "float32")
    width = 2 if dtype in ("bfloat16", "float16") else 4
    return sum(f.stat().st_size for f in files) / width


def trained_tokens(settings: Settings, adapter: str) -> int | None:
    """The tokens the newest finished training run of ``adapter`` saw, if one is stored."""
    from finetune.store import TrainingStore

    if not settings.db_path.is_file():
        return None
    with TrainingStore(settings.db_path) as store:
        runs = [r for r in store.list_runs(adapter) if r.summary and r.summary.get("tokens_seen")]
    return int(runs[0].summary["tokens_seen"]) if runs and runs[0].summary else None


def local_tokens_per_s(
    settings: Settings, base: str, probe: Callable[[], tuple[float | None, str]] | None = None
) -> tuple[float | None, str]:
    """Training throughput on this machine: the newest stored run of ``base``; else a short probe
    run (when ``probe`` is given); else the newest run of any model."""
    from finetune.store import TrainingStore

    runs = []
    if settings.db_path.is_file():
        with TrainingStore(settings.db_path) as store:
            runs = [r for r in store.list_runs(limit=200) if r.summary and r.summary.get("tokens_per_s")]
    same = [r for r in runs if r.base == base]
    if not same and probe is not None:
        speed, source = probe()
        if speed:
            return speed, source
    for pool, what in ((same, f"same base model {base}"), (runs, "another base model: a rough guide")):
        if pool:
            run = pool[0]
            assert run.summary is not None
            return float(run.summary["tokens_per_s"]), f"training run {run.run_id} ({run.adapter}, {what})"
    return None, "no training run in the store yet: run `ladder finetune train --max-steps 5` to measure"


def probe_tokens_per_s(
    settings: Settings, base: str, examples: Sequence[Example], train: dict[str, Any], steps: int
) -> tuple[float | None, str]:
    """Train ``steps`` steps on a few of the examples, then delete the adapter; the run stays in
    the store, so the next estimate needs no probe."""
    import tempfile
    import uuid

    from assistant.errors import LadderError
    from finetune.adapters import remove_adapter
    from finetune.train.config import TrainConfig
    from finetune.train.run import TrainRequest
    from finetune.train.run import train as run_training

    overrides = {
        "max_steps": steps,
        "checkpoint_every": 0,
        "min_examples": 1,
        "patience": 0,
        "eval_every": None,
    }
    config = TrainConfig.from_dict({**train, **overrides})
    text = config.mode == "cpt"
    sample = [e for e in examples if e.is_text == text][: config.batch_size * config.grad_accum * steps]
    if not sample:
        return None, "no examples to probe with"
    name = f"probe-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "probe.jsonl"
        rows = [{"text": e.text} if text else {"messages": e.messages} for e in sample]
        data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
        try:
            result = run_training(TrainRequest(base, data, name, config), settings)
        except LadderError as exc:
            return None, f"the probe run failed: {exc.message}"
        finally:
            remove_adapter(name, settings)
    speed = result.manifest["results"].get("tokens_per_s")
    return (float(speed) if speed else None), f"a {steps}-step probe run ({name}) just now"


def estimates(
    settings: Settings,
    base: str,
    base_dir: Path | None,
    train_tokens: int,
    probe: Callable[[], tuple[float | None, str]] | None = None,
) -> list[dict[str, Any]]:
    from evaluation.metrics.cost import load_price_table

    out: list[dict[str, Any]] = []
    speed, source = local_tokens_per_s(settings, base, probe)
    price, price_source = load_price_table(settings.price_table).lookup(base)
    rate = price.compute_per_hour if price is not None else None
    hours = train_tokens / speed / 3600 if speed else None
    out.append(
        {
            "where": "this machine",
            "tokens_per_s": speed,
            "hours": hours,
            "source": source,
            "cost": hours * rate if hours is not None and rate is not None else None,
            "price_source": price_source,
        }
    )
    params = model_params(base_dir) if base_dir is not None else None
    if params:
        mfu = SMALL_MFU if params < SMALL_MODEL_PARAMS else LARGE_MFU
        for gpu, tflops, usd in GPU_TABLE:
            gpu_speed = mfu * tflops * 1e12 / (4 * params)
            gpu_hours = train_tokens / gpu_speed / 3600
            out.append(
                {
                    "where": gpu,
                    "tokens_per_s": gpu_speed,
                    "hours": gpu_hours,
                    "cost": gpu_hours * usd,
                    "source": f"{tflops:g} TFLOP/s peak x MFU {mfu:.2f} / (4 x {params / 1e6:.0f}M params); "
                    "loading and tokenizing not included",
                    "price_source": f"assumed {usd:.2f} USD/hour on demand",
                }
            )
    return out


def planned_train_tokens(
    config: DecisionConfig, settings: Settings, examples: Sequence[Example], model: str | None, train: Any
) -> int:
    """The tokens a training run will see, counted as training counts them: each example as the
    base model's chat template renders it (its tokenizer when the base is local, else characters
    plus role markers), cut at ``max_seq_len``; from raw files, the share the split keeps for
    training plus the general examples ``prepare`` mixes in (``ratio`` per domain example); times
    the epochs (or ``max_steps`` batches). Counting the text alone, without the template and
    the general mix, put the demo's estimate 2.4x too low."""
    import random

    from finetune.data.clean import TokenCounter
    from finetune.data.prepare import DEFAULT_GENERAL, PrepareConfig, prepare_options
    from finetune.data.split import SplitFractions

    counter = TokenCounter.for_model(model, settings) if model else TokenCounter()
    max_len = int(train.max_seq_len)

    def tokens_of(batch: Sequence[Example]) -> list[int]:
        return [min(counter.count(example), max_len) for example in batch]

    spec = config.finetune
    per_example = tokens_of(examples)
    total, count = float(sum(per_example)), float(len(per_example))
    if spec.data is None and per_example:  # raw files: what prepare will make of them
        options = prepare_options(spec.prepare)
        split = options.get("split") or SplitFractions()
        ratio = float(options.get("ratio", PrepareConfig.ratio))
        general = str(options.get("general", PrepareConfig.general))
        total, count = total * split.train, count * split.train
        if ratio > 0 and general != "none":
            from evaluation.suites.source import SuiteFiles
            from finetune.data.load import load_file

            path = DEFAULT_GENERAL if general == "default" else Path(general)
            pool = load_file(path, "auto", SuiteFiles()) if path.is_file() else []
            if pool:
                sample = random.Random(0).sample(pool, min(200, len(pool)))
                mixed = min(ratio * count, len(pool))
                total += mixed * sum(tokens_of(sample)) / len(sample)
                count += mixed
    if train.max_steps:  # max_steps overrides the epochs
        return int(train.max_steps * train.batch_size * train.grad_accum * total / max(count, 1))
    seen = total * float(train.epochs)
    return int(seen)


def time_budget(local: dict[str, Any], max_minutes: float | None) -> Check | None:
    """``finetune.max_minutes`` against the estimate on this machine: a run estimated longer is
    recommended with its command instead of started. No check without a limit or an estimate."""
    if max_minutes is None or local.get("hours") is None:
        return None
    minutes = float(local["hours"]) * 60
    return Check(
        "time_budget",
        minutes <= max_minutes,
        round(minutes, 1),
        f"<= {max_minutes:g} min of training on this machine (finetune.max_minutes)",
        {"limit": max_minutes, "tokens_per_s": local.get("tokens_per_s"), "source": local.get("source")},
    )


def readiness(
    config: DecisionConfig,
    settings: Settings,
    examples: Sequence[Example],
    dev_leaks: int,
    model: str,
    adapter: str,
) -> Readiness:
    from assistant.models.refs import parse_model_ref
    from finetune.train.config import TrainConfig

    spec = config.finetune
    domain = [e for e in examples if e.origin != "general" and "general" not in e.tags]
    checks = [
        Check(
            "examples",
            len(domain) >= spec.min_examples,
            len(domain),
            f">= {spec.min_examples} domain training examples",
        )
    ]
    labels = _labels(domain)
    if labels is not None and spec.min_per_label:
        fewest = min(labels.values())
        checks.append(
            Check(
                "per_label",
                fewest >= spec.min_per_label,
                fewest,
                f">= {spec.min_per_label} examples per label",
                {"labels": dict(labels)},
            )
        )
    rate, dropped = duplicate_rate(examples)
    checks.append(
        Check(
            "duplicates",
            rate <= spec.max_duplicate_rate,
            round(rate, 4),
            f"<= {spec.max_duplicate_rate:.0%} exact or near duplicates",
            {"duplicates": dropped},
        )
    )
    checks.append(Check("test_leakage", True, 0, "no training example matches a test question"))
    if dev_leaks:
        checks.append(Check("dev_overlap", False, dev_leaks, "no training example matches a dev question"))
    ref = parse_model_ref(model, settings)
    local = ref.kind in ("pack", "folder")
    checks.append(Check("local_base", local, ref.kind, "a local base model (a pack or a folder)"))
    train = TrainConfig.from_dict(spec.train)
    epochs = float(train.epochs or 1)
    tokens = planned_train_tokens(config, settings, examples, model if local else None, train)
    base_ref, base_dir = local_base(model, settings)
    probe = None
    # A run that will not train probes a local base for the estimate; so does one that will,
    # when a time budget must be checked before it starts (the probe's speed is stored, so
    # later decisions on this base need none).
    needs_speed = not config.allow_finetune or spec.max_minutes is not None
    if base_dir is not None and spec.probe_steps and needs_speed:
        steps = spec.probe_steps

        def probe() -> tuple[float | None, str]:
            return probe_tokens_per_s(settings, model, examples, spec.train, steps)

    data = str(spec.data) if spec.data is not None else "<prepared folder>"
    command = f"ladder finetune train --base {model} --data {data} --name {adapter} --peft {train.peft}"
    for key, flag in (
        ("epochs", "--epochs"),
        ("learning_rate", "--lr"),
        ("rank", "--rank"),
        ("max_steps", "--max-steps"),
    ):
        if key in spec.train:
            command += f" {flag} {spec.train[key]}"
    costs = estimates(settings, base_ref, base_dir, tokens, probe)
    budget = time_budget(costs[0], spec.max_minutes)
    if budget is not None:
        checks.append(budget)
    return Readiness(
        ready=all(c.ok for c in checks if c.name not in NON_BLOCKING),
        examples=len(domain),
        checks=checks,
        estimates=costs,
        train_tokens=tokens,
        epochs=epochs,
        command=command,
    )


def local_base(model: str, settings: Settings) -> tuple[str, Path | None]:
    """The base model's reference and folder; no folder for a model that is not local."""
    from assistant.models.refs import parse_model_ref

    if parse_model_ref(model, settings).kind not in ("pack", "folder"):
        return model, None
    from finetune.adapters import resolve_base

    return resolve_base(model, settings)


def measured(ready: Readiness, settings: Settings, model: str, adapter: str) -> Readiness:
    """``ready`` with its estimates redone once ``adapter`` has a training run: that run's
    tokens/s, and the tokens it saw (template, general mix and epochs included) instead of
    the estimate from the examples' text. The checks stand as they were."""
    tokens = trained_tokens(settings, adapter) or ready.train_tokens
    base_ref, base_dir = local_base(model, settings)
    return replace(ready, train_tokens=tokens, estimates=estimates(settings, base_ref, base_dir, tokens))

"""The fine-tuning rung, when the decision may run it: prepare the data (raw files), train a
LoRA adapter (or reuse / resume one), and the forgetting check.

Re-running a decision does not train again: an adapter of the decision's name whose data
hash, hyperparameters and base model match is reused as it is, and an unfinished training
of that name (its checkpoints under ``adapters/.work/``) is resumed. Prepared data is
reused while the raw files and the prepare settings are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.progress import NullProgress, Progress
from assistant.settings import Settings
from evaluation.decide.config import DecisionConfig
from evaluation.decide.result import Forgetting
from evaluation.results import RunResult

Trainer = Callable[..., Any]  # finetune.train.run.train(request, settings, progress) -> TrainResult


def owned_adapter_name(config: DecisionConfig) -> str:
    """The adapter name a decision uses when the config names none: the decision's own to replace."""
    return f"{config.name}-ladder"


def decision_dir(config: DecisionConfig, settings: Settings) -> Path:
    return settings.home / "decisions" / config.name


def prepared_data(config: DecisionConfig, settings: Settings, progress: Progress) -> Path:
    """The prepared folder: ``finetune.data`` as given, or ``finetune.raw`` prepared once."""
    spec = config.finetune
    if spec.data is not None:
        return spec.data
    import json

    from assistant.storage import sha256_file
    from evaluation.suites.source import SuiteFiles
    from finetune.data.prepare import PrepareConfig, prepare, prepare_options

    options = prepare_options(spec.prepare)
    suites = tuple(p for p in (config.dev, config.test, config.general) if p is not None)
    out = decision_dir(config, settings) / "data"
    prep = PrepareConfig(domain=tuple(spec.raw), out=out, suites=suites, force=True, **options)
    manifest_file = out / "manifest.json"
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        hashes = {i.get("path"): i.get("sha256") for i in manifest.get("inputs", [])}
        same_files = all(hashes.get(str(p)) == sha256_file(p) for p in spec.raw)
        if same_files and manifest.get("settings") == json.loads(json.dumps(prep.settings_dict())):
            progress.note(f"reusing prepared data {out}")
            return out
    progress.note(f"preparing training data into {out}")
    prepare(prep, settings, progress, suites=SuiteFiles())
    return out


def _reusable(name: str, settings: Settings, base: str, data: Path, train_config: Any) -> bool:
    from finetune import adapters
    from finetune.train.data import locate_data

    if not adapters.exists(name, settings):
        return False
    manifest = adapters.read_manifest(name, settings)
    base_ref, _ = adapters.resolve_base(base, settings)
    return bool(
        manifest.get("data", {}).get("data_hash") == locate_data(data).data_hash
        and manifest.get("hyperparameters") == train_config.to_dict()
        and manifest.get("base_model", {}).get("ref") == base_ref
    )


def train_adapter(
    config: DecisionConfig,
    settings: Settings,
    base: str,
    adapter: str,
    progress: Progress | None = None,
    trainer: Trainer | None = None,
) -> tuple[str, bool]:
    """Train (or reuse, or resume) the adapter; returns ``(model reference, trained now)``."""
    from finetune import adapters
    from finetune.train.config import TrainConfig
    from finetune.train.run import TrainRequest

    progress = progress or NullProgress()
    data = prepared_data(config, settings, progress)
    train_config = TrainConfig.from_dict(config.finetune.train)
    if _reusable(adapter, settings, base, data, train_config):
        progress.note(f"reusing adapter {adapter}: same base, data and settings")
        return f"{base}+{adapter}", False
    resume = (adapters.work_dir(adapter, settings) / "run.json").is_file()
    if adapters.exists(adapter, settings) and adapter != owned_adapter_name(config) and not resume:
        # An adapter named in the config may be someone's own: replace only the decision's default one.
        raise adapters.AdapterExists(
            f"adapter {adapter!r} exists but was trained on other data, settings or base model",
            hint=f"remove it (ladder finetune rm {adapter}) or set another finetune.adapter",
        )
    request = TrainRequest(
        base=base,
        data=None if resume else data,
        name=adapter,
        config=train_config,
        overwrite=not resume,
        resume=resume,
    )
    progress.note(("resuming" if resume else "training") + f" adapter {adapter} on {data}")
    _run(request, settings, progress, trainer)
    return f"{base}+{adapter}", True


def _run(request: Any, settings: Settings, progress: Progress, trainer: Trainer | None) -> None:
    if trainer is None:
        from finetune.train.run import train

        trainer = train
    trainer(request, settings, progress)


def train_on(
    config: DecisionConfig,
    settings: Settings,
    base: str,
    data: Path,
    adapter: str,
    progress: Progress,
    trainer: Trainer | None = None,
) -> str:
    """Train ``adapter`` on the data folder ``data`` with the decision's recipe (a learning-curve
    size: fewer examples, so the minimum is what it has), or reuse it; the model reference."""
    import dataclasses

    from finetune.train.config import TrainConfig
    from finetune.train.data import locate_data
    from finetune.train.run import TrainRequest

    train_config = TrainConfig.from_dict(config.finetune.train)
    rows = sum(1 for line in locate_data(data).train_file.read_text(encoding="utf-8").splitlines() if line)
    train_config = dataclasses.replace(train_config, min_examples=min(train_config.min_examples, rows))
    if not _reusable(adapter, settings, base, data, train_config):
        progress.note(f"training adapter {adapter} on {data} ({rows} examples)")
        request = TrainRequest(base=base, data=data, name=adapter, config=train_config, overwrite=True)
        _run(request, settings, progress, trainer)
    return f"{base}+{adapter}"


def record_evaluation(
    adapter: str,
    settings: Settings,
    decision_id: str,
    role: str,
    run: RunResult,
    means: dict[str, float | None],
) -> None:
    """Fill the adapter manifest's ``evaluations`` (once per run)."""
    from finetune import adapters

    manifest = adapters.read_manifest(adapter, settings)
    if any(e.get("run_id") == run.run_id for e in manifest.get("evaluations", [])):
        return
    adapters.add_evaluation(
        adapter,
        settings,
        {
            "decision": decision_id,
            "split": role,
            "suite": run.suite,
            "run_id": run.run_id,
            "created": run.created,
            "metrics": means,
        },
    )


def forgetting(
    before: RunResult, after: RunResult, metric: str, max_drop: float, higher_is_better: bool = True
) -> Forgetting:
    """General ability before and after fine-tuning: the drop of ``metric``, paired on items."""
    from evaluation.aggregate import compare

    a_label, b_label = after.strategies[0].strategy, before.strategies[0].strategy
    (c,) = compare("after", "before", after.records_for(a_label), before.records_for(b_label), [metric])
    mean_before = before.strategies[0].metrics[metric].mean
    mean_after = after.strategies[0].metrics[metric].mean
    drop = None
    if mean_before is not None and mean_after is not None:
        drop = (mean_before - mean_after) if higher_is_better else (mean_after - mean_before)
    # A drop of exactly the bound passes: 0.95 - 0.90 is 0.04999999999999993 in floats, and
    # 0.90 - 0.85 is 0.05000000000000004.
    passed = drop is not None and drop <= max_drop + 1e-9
    return Forgetting(metric, mean_before, mean_after, drop, max_drop, passed, c.p_value)

"""A deployment: every serving format from the cheapest to the dearest, each built, evaluated on
the decision's held-out test split and measured, and the cheapest that meets every target.

    deployment = run_deploy(DeployRequest("demo-ticket-routing"), settings, progress)

1. The decision (by name or id) and its model (``source``); everything that can be refused is
   refused before anything is built: no recommended rung, an endpoint, an adapter whose base is
   not installed, an unknown format, a named format whose engine is missing.
2. The model as one merged folder, then for each format, cheapest first: build it into the
   staging folder, measure it in a child process (``measure``), and judge its test-split scores
   with the decision's own rule (``evaluation.decide.rules``: every target's CI bound at the
   decision's confidence clears the threshold, and the cost and latency limits hold).
3. The verdict is the cheapest format that meets. By default every format is measured anyway,
   because the table is the finding (what a cheaper format costs in quality, what a dearer one
   buys); ``stop_at_first`` skips the dearer ones once one meets.
4. The deployment folder is moved into place whole (``record.publish``); on any failure the
   staging folder is removed and nothing is left under ``LADDER_HOME/deployments/<name>``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import CapabilityError, ConfigError, LadderError, PackError
from assistant.progress import NullProgress, Progress
from assistant.settings import Settings
from evaluation.decide.config import DecisionConfig, Target, load_decision_config
from evaluation.decide.result import Decision
from evaluation.decide.rules import limit_misses, suite_scores, target_misses
from evaluation.decide.store import DecisionStore
from evaluation.deploy.measure import measure, measure_in_child, settings_flags
from evaluation.deploy.record import (
    artifact_files,
    check_name,
    deployments_dir,
    machine,
    publish,
    staging_dir,
)
from evaluation.deploy.report import write_reports
from evaluation.deploy.result import MEASURED, MET, NOT_MET, Deployment, FormatResult
from evaluation.deploy.source import Source, find_decision, materialize, source_of
from finetune.deploy.formats import FormatSpec, format_names, get_format

STOPPED = "a cheaper format met every target (--stop-at-first)"


@dataclass
class DeployRequest:
    decision: str  # a decision's name, id, unique id prefix or `latest`
    formats: Sequence[str] | None = None  # None: every registered format
    stop_at_first: bool = False
    name: str | None = None  # the deployment's name; None: the decision's name
    isolate: bool = True  # measure each format in a child process (clean RSS); False: in-process


def parse_target(text: str) -> Target:
    """``"exact_match >= 0.8"`` (how a decision stores its targets) as a ``Target``."""
    metric, op, value = text.split()
    return Target(metric, op, float(value))


def chosen_formats(names: Sequence[str] | None) -> list[FormatSpec]:
    """The formats to try, cheapest first; an unknown name is a one-line error."""
    known = format_names()
    if not names:
        return [get_format(n) for n in known]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown format {unknown[0]!r}", hint="formats: " + ", ".join(known))
    return sorted((get_format(n) for n in dict.fromkeys(names)), key=lambda s: (s.rank, s.name))


def decision_config(decision: Decision) -> DecisionConfig:
    """The decision's config (its test split, judge, limits) with the targets it was decided on."""
    if not decision.config_path:
        raise ConfigError(f"decision {decision.decision_id} records no config file: no test split to use")
    try:
        config = load_decision_config(decision.config_path)
    except ConfigError as exc:
        raise ConfigError(
            f"the config of decision {decision.name} cannot be read: {exc.message}",
            hint="the test split and targets come from it; restore it or run `ladder decide` again",
        ) from None
    limits = decision.limits or {}
    return dataclasses.replace(
        config,
        targets=[parse_target(t) for t in decision.targets],
        confidence=decision.confidence,
        max_cost_per_1k=limits.get("max_cost_per_1k", config.max_cost_per_1k),
        max_p95_latency_s=limits.get("max_p95_latency_s", config.max_p95_latency_s),
    )


def run_deploy(request: DeployRequest, settings: Settings, progress: Progress | None = None) -> Deployment:
    from evaluation.decide.judge_gate import decision_judge

    progress = progress or NullProgress()
    started = time.perf_counter()
    with DecisionStore(settings.db_path) as store:
        decision = find_decision(request.decision, store)
    config = decision_config(decision)
    source = source_of(decision, settings)
    specs = chosen_formats(request.formats)
    name = check_name(request.name or decision.name)
    missing = {s.name: s.engine_missing() for s in specs}
    for spec in specs:
        if request.formats and missing[spec.name]:
            raise CapabilityError(
                f"format {spec.name} needs {spec.engine}, which is not installed", hint=missing[spec.name]
            )
    if not any(hint is None for hint in missing.values()):
        raise CapabilityError("no format's engine is installed", hint=next(iter(missing.values())))
    job: dict[str, Any] = {
        "suite": str(config.test),
        "strategy": source.strategy,
        "judge": None if config.no_judge else decision_judge(config, settings),
        "no_judge": config.no_judge,
        "limit": config.limit,
        "latency_sample": None if config.max_p95_latency_s is not None else 0,
    }
    staging = staging_dir(name, settings)
    final = deployments_dir(settings) / name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        merged = materialize(source, staging / ".source", settings, progress)
        results: list[FormatResult] = []
        for index, spec in enumerate(specs, 1):
            result = FormatResult(spec.name, spec.engine, spec.rank)
            results.append(result)
            if missing[spec.name]:
                result.note = f"{spec.engine} is not installed: {missing[spec.name]}"
            elif request.stop_at_first and any(r.meets for r in results):
                result.note = STOPPED
            else:
                progress.note(f"format {index}/{len(specs)}: {spec.name}")
                _measure(spec, result, merged, staging, job, config, settings, request.isolate, progress)
                result.model_ref = result.model_ref.replace(str(staging), str(final))
        for scratch in (".source", ".measure"):
            shutil.rmtree(staging / scratch, ignore_errors=True)
        chosen = next((r.format for r in results if r.meets), None)
        deployment = _deployment(decision, source, config, name, results, chosen, request)
        deployment.wall_s = time.perf_counter() - started
        write_reports(deployment, staging)
        publish(staging, deployment, settings)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return deployment


def _measure(
    spec: FormatSpec,
    result: FormatResult,
    merged: Path,
    staging: Path,
    job: dict[str, Any],
    config: DecisionConfig,
    settings: Settings,
    isolate: bool,
    progress: Progress,
) -> None:
    """Build one format into the staging folder, measure it and judge it by the decision's rule."""
    from evaluation.store import RunStore

    began = time.perf_counter()
    try:
        built = spec.build(merged, staging / spec.name, progress, settings)
    except LadderError:
        raise
    except Exception as exc:  # a converter that fails halfway: one line, the staging folder goes
        raise PackError(
            f"building {spec.name} failed: {type(exc).__name__}: {exc}".splitlines()[0],
            hint="nothing was written to the deployments folder",
        ) from exc
    result.build_s = time.perf_counter() - began
    result.model_ref, result.settings, result.notes = built.model_ref, dict(built.settings), list(built.notes)
    result.files = artifact_files(built.files, staging)
    result.size_bytes = sum(f.bytes for f in result.files)
    job = {**job, "model_ref": built.model_ref, "settings": settings_flags(settings, built.settings)}
    if isolate:
        numbers = measure_in_child(job, staging / ".measure" / spec.name, progress)
    else:
        numbers = measure(job, progress)
    for key in ("load_s", "peak_rss_bytes", "decode_tokens", "decode_tokens_per_s", "throughput_qps"):
        setattr(result, key, numbers.get(key))
    with RunStore(settings.db_path) as store:
        run = store.load_run(numbers["run_id"])
    lane = run.strategies[0].strategy
    result.test = suite_scores(run, lane, list(run.strategies[0].metrics), config.targets, config.confidence)
    result.misses = target_misses(result.test, config.targets) + limit_misses(result.test, config)
    result.meets = not result.misses
    result.state = MEASURED


def _deployment(
    decision: Decision,
    source: Source,
    config: DecisionConfig,
    name: str,
    results: list[FormatResult],
    chosen: str | None,
    request: DeployRequest,
) -> Deployment:
    return Deployment(
        name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        status=MET if chosen else NOT_MET,
        chosen=chosen,
        decision_id=decision.decision_id,
        decision_name=decision.name,
        rung=decision.recommended or "",
        source_model=source.model,
        base_model=source.base,
        adapter=source.adapter,
        adapter_sha256=source.adapter_sha256,
        strategy=source.strategy,
        test_suite=decision.test_suite or config.test.stem,
        targets=[str(t) for t in config.targets],
        limits={"max_cost_per_1k": config.max_cost_per_1k, "max_p95_latency_s": config.max_p95_latency_s},
        confidence=config.confidence,
        formats=results,
        stop_at_first=request.stop_at_first,
        machine=machine(),
        language=decision.language,
    )


def exit_code(deployment: Deployment) -> int:
    """0 when a format meets every target, 1 when none does."""
    return 0 if deployment.passed else 1

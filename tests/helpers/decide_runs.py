"""Synthetic decision runs for tests: runs whose items score what a test says, rungs judged by
the real rules from them, an evaluator that answers from a table (no model is loaded) and a
trainer that publishes an empty adapter with a real manifest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.settings import Settings
from evaluation.aggregate import metric_result
from evaluation.decide.config import DecisionConfig, decision_config_from_dict
from evaluation.decide.engine import Evaluator
from evaluation.decide.result import EVALUATED, RungResult
from evaluation.decide.rules import judge_rung, suite_scores
from evaluation.metrics.cost import PriceTable, cost_summary
from evaluation.results import ItemRecord, ItemScore, RunResult, StrategyResult
from tests.helpers.decide import LABELS


def synthetic_run(
    label: str, scores: dict[str, Sequence[float | None]], suite: str = "cases_dev"
) -> RunResult:
    """A finished run of one strategy whose items score ``scores`` (metric -> value per item)."""
    n = len(next(iter(scores.values())))
    records = [
        ItemRecord(
            label,
            f"i{i}",
            "",
            f"q{i}",
            f"q{i}",
            LABELS[i % 4],
            LABELS[i % 4],
            scores={m: ItemScore(v[i]) for m, v in scores.items()},
            latency_s=0.01,
            model_calls=1,
        )
        for i in range(n)
    ]
    result = StrategyResult(label, {}, "", "fake")
    result.metrics = {m: metric_result(m, records, True, None) for m in scores}
    result.cost = cost_summary(records, "fake", PriceTable([]))
    return RunResult(
        uuid.uuid4().hex[:8], suite, suite, "qa", "complete", "now", strategies=[result], records=records
    )


def hits(n: int, right: int) -> list[float | None]:
    return [1.0 if i < right else 0.0 for i in range(n)]


def config_for(targets: dict[str, Any] | None = None) -> DecisionConfig:
    data = {
        "suites": {"dev": "dev.yaml", "test": "test.yaml"},
        "targets": targets or {"exact_match": ">= 0.8"},
    }
    return decision_config_from_dict(data, Path("."), "test")


def judged(
    runs: dict[str, tuple[str, RunResult]], config: DecisionConfig
) -> tuple[list[RungResult], dict[str, list[ItemRecord]]]:
    """Rungs judged by the real rules from synthetic runs (label -> (strategy, run)), and their records."""
    rungs, records = [], {}
    for label, (strategy, run) in runs.items():
        result = RungResult(label, strategy, state=EVALUATED)
        result.dev = suite_scores(run, label, list(run.strategies[0].metrics), config.targets, 0.95)
        judge_rung(result, config)
        rungs.append(result)
        records[label] = run.records_for(label)
    return rungs, records


class ScriptedEvaluator(Evaluator):
    """An evaluator whose runs a test scripts: ``scores`` gives every item's exact_match, and a
    rung search's slice (``items``) keeps those items' scores; ``asked`` hears of each run. No
    model is loaded or asked."""

    def scores(self, suite: Path, strategy: dict[str, Any], model: str) -> list[float | None]:
        raise NotImplementedError

    def asked_for(
        self, suite: Path, strategy: dict[str, Any], model: str, injected: bool, run: RunResult
    ) -> None:
        """What a test keeps of each run (nothing by default)."""

    def evaluate(
        self,
        suite: Path,
        strategy: dict[str, Any],
        model: str,
        config: Any,
        *,
        injected: bool = True,
        items: Sequence[str] | None = None,
    ) -> RunResult:
        scores = self.scores(suite, strategy, model)
        run = synthetic_run(str(strategy["strategy"]), {"exact_match": scores}, suite.stem)
        if items is not None:
            wanted = set(items)
            run.records = [r for r in run.records if r.item_id in wanted]
        self.asked_for(suite, strategy, model, injected, run)
        return run


class SyntheticEvaluator(ScriptedEvaluator):
    """Scores by (suite, fine-tuned or not), or by ("suite:strategy", fine-tuned or not) where the
    table has that key."""

    def __init__(self, table: dict[tuple[str, bool], int], n: int = 40) -> None:
        self.table, self.n, self.model_calls = table, n, 0
        self.asked: list[tuple[str, str]] = []
        self.strategies: list[tuple[str, dict[str, Any]]] = []

    def scores(self, suite: Path, strategy: dict[str, Any], model: str) -> list[float | None]:
        name, tuned = str(strategy["strategy"]), "+" in model
        right = self.table.get((f"{suite.stem}:{name}", tuned), self.table.get((suite.stem, tuned), 0))
        return hits(self.n, right)

    def asked_for(
        self, suite: Path, strategy: dict[str, Any], model: str, injected: bool, run: RunResult
    ) -> None:
        self.asked += [(suite.stem, model), (suite.stem, f"{strategy['strategy']}:{model}")]
        self.strategies.append((suite.stem, dict(strategy)))


def fake_trainer(request: Any, settings: Settings, progress: Any, data: Path | None = None) -> None:
    """Publishes an (empty) adapter with the manifest a real training run writes."""
    from finetune.adapters import resolve_base
    from finetune.train.data import locate_data

    source = request.data or data
    assert source is not None
    folder = settings.adapters_dir / request.name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    manifest = {
        "name": request.name,
        "evaluations": [],
        "hyperparameters": request.config.to_dict(),
        "data": {"data_hash": locate_data(source).data_hash},
        "base_model": {"ref": resolve_base(request.base, settings)[0]},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

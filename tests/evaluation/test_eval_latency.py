"""Compute per question and single-request latency: a batch's wall time is neither.

A batched backend reports the whole batch's wall time as every answer's latency. The runner
must charge each question its share of the batch (wall / batch size) and measure what one
user waits on requests answered one at a time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.settings import load_settings
from assistant.types import Completion, GenParams, Message
from evaluation.metrics.cost import (
    LATENCY_EVERY_ITEM,
    LATENCY_NOT_MEASURED,
    LATENCY_PER_ANSWER,
    LATENCY_SAMPLE,
    PriceTable,
    cost_summary,
    nearest_rank,
)
from evaluation.report import render_markdown
from evaluation.results import ItemRecord
from evaluation.runner import EvalPlan, Runner
from evaluation.store import RunStore

DATASETS = Path(__file__).resolve().parents[2] / "datasets" / "suites"
DELAY = 0.05  # seconds per conversation: a batch of N takes at least N * DELAY


class BatchWallFake(FakeBackend):
    """Like a batched local model: every answer's latency is the whole batch's wall time."""

    batches_together = True

    def __init__(self) -> None:
        super().__init__(default="an answer", delay_s=DELAY)
        self.batch_sizes: list[int] = []
        self.batch_walls: list[float] = []

    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        started = time.perf_counter()
        out = super().generate(batch, params)
        wall = time.perf_counter() - started
        self.batch_sizes.append(len(batch))
        self.batch_walls.append(wall)
        return [dataclasses.replace(c, latency_s=wall) for c in out]


def _run(tmp_path: Path, batch_size: int, n: int = 10, **values: object):  # type: ignore[no-untyped-def]
    settings = load_settings({"batch_size": batch_size, "threads": 1, **values})
    backend = BatchWallFake()
    runner = Runner(settings, RunStore(settings.db_path), backend=backend)
    run = runner.run(EvalPlan(DATASETS / "demo_qa.yaml", limit=n, no_judge=True))
    return run, backend, runner


def test_a_batched_run_charges_wall_over_n_and_measures_single_requests(isolated_home: Path) -> None:
    run, backend, _ = _run(isolated_home, batch_size=10)
    # One batch of 10, then 5 single requests (the default latency_sample) spread over the items.
    assert backend.batch_sizes == [10, 1, 1, 1, 1, 1]
    batch_wall = backend.batch_walls[0]
    assert batch_wall >= 10 * DELAY
    # The backend did report the batch's wall time as each answer's latency ...
    assert all(r.latency_s == pytest.approx(batch_wall) for r in run.records)
    cost = run.strategies[0].cost
    assert cost is not None
    # ... but a question is charged its share of the batch ...
    assert cost.compute_s_mean is not None
    assert DELAY <= cost.compute_s_mean < batch_wall / 2
    assert all(r.compute_s == pytest.approx(cost.compute_s_mean) for r in run.records)
    # ... and the latency limit reads single requests, measured: about one DELAY, not the batch.
    assert cost.latency_n == 5 and cost.latency_source == LATENCY_SAMPLE
    assert cost.latency_p50_s is not None and cost.latency_p95_s is not None
    assert DELAY <= cost.latency_p50_s <= cost.latency_p95_s < batch_wall / 2
    # The sample's calls are counted apart from the run's.
    assert run.model_calls == 10 and run.latency_calls == 5
    # Which items were sampled: spread over the suite, one request each.
    sampled = [conv[-1].content for conv, _ in backend.calls[10:]]
    firsts = [conv[-1].content for conv, _ in backend.calls[:10]]
    assert sampled == [firsts[i] for i in (0, 2, 4, 6, 8)]


def test_the_sample_is_cached_like_any_answer(isolated_home: Path) -> None:
    settings = load_settings({"batch_size": 10, "threads": 1})
    store = RunStore(settings.db_path)
    plan = EvalPlan(DATASETS / "demo_qa.yaml", limit=10, no_judge=True, resume=False)
    first = Runner(settings, store, backend=BatchWallFake()).run(plan)
    again_backend = BatchWallFake()
    again = Runner(settings, store, backend=again_backend).run(plan)
    # Zero calls on an unchanged re-run; the single-request times are the measured ones.
    assert again.model_calls == 0 and again.latency_calls == 0 and again_backend.calls == []
    a, b = first.strategies[0].cost, again.strategies[0].cost
    assert a is not None and b is not None
    assert b.latency_n == 5 and b.latency_p95_s == a.latency_p95_s and b.latency_p50_s == a.latency_p50_s


def test_batches_of_one_use_every_item_and_take_no_sample(isolated_home: Path) -> None:
    run, backend, _ = _run(isolated_home, batch_size=1, n=4)
    assert backend.batch_sizes == [1, 1, 1, 1] and run.model_calls == 4
    cost = run.strategies[0].cost
    assert cost is not None and cost.latency_n == 4 and cost.latency_source == LATENCY_EVERY_ITEM
    assert cost.latency_p95_s == max(r.compute_s for r in run.records)


def test_a_backend_timing_each_request_on_its_own_needs_no_sample(isolated_home: Path) -> None:
    settings = load_settings({"batch_size": 10, "threads": 1})
    backend = FakeBackend(default="an answer", delay_s=DELAY)  # answers one conversation at a time
    run = Runner(settings, RunStore(settings.db_path), backend=backend).run(
        EvalPlan(DATASETS / "demo_qa.yaml", limit=6, no_judge=True)
    )
    assert len(backend.calls) == 6 and run.latency_calls == 0
    cost = run.strategies[0].cost
    assert cost is not None and cost.latency_source == LATENCY_PER_ANSWER and cost.latency_n == 6
    assert cost.latency_p95_s == max(r.latency_s for r in run.records)
    assert cost.latency_p95_s is not None and DELAY <= cost.latency_p95_s < 6 * DELAY


def test_latency_sample_zero_measures_nothing_and_says_so(isolated_home: Path) -> None:
    run, backend, _ = _run(isolated_home, batch_size=10, latency_sample=0)
    assert backend.batch_sizes == [10]
    cost = run.strategies[0].cost
    assert cost is not None and cost.latency_p95_s is None and cost.latency_n == 0
    assert cost.latency_source == LATENCY_NOT_MEASURED
    assert "single-request latency not measured" in render_markdown(run)


def test_latency_sample_must_not_be_negative(isolated_home: Path) -> None:
    with pytest.raises(ConfigError, match="latency_sample"):
        load_settings({"latency_sample": -1})
    settings = load_settings({"batch_size": 10})
    store = RunStore(settings.db_path)
    with pytest.raises(ConfigError, match="latency_sample"):
        Runner(settings, store, backend=BatchWallFake()).run(
            EvalPlan(DATASETS / "demo_qa.yaml", limit=3, latency_sample=-1)
        )
    assert store.list_runs() == []


def test_a_plan_sets_its_own_sample_size(isolated_home: Path) -> None:
    settings = load_settings({"batch_size": 10, "threads": 1})
    backend = BatchWallFake()
    run = Runner(settings, RunStore(settings.db_path), backend=backend).run(
        EvalPlan(DATASETS / "demo_qa.yaml", limit=10, no_judge=True, latency_sample=2)
    )
    assert backend.batch_sizes == [10, 1, 1] and run.latency_calls == 2
    cost = run.strategies[0].cost
    assert cost is not None and cost.latency_n == 2
    sampled = [conv[-1].content for conv, _ in backend.calls[10:]]
    assert sampled == [backend.calls[i][0][-1].content for i in (0, 5)]


def test_the_report_says_which_time_is_which(isolated_home: Path) -> None:
    run, _, _ = _run(isolated_home, batch_size=10)
    text = render_markdown(run)
    assert "compute / q (batched)" in text and "single-request p95" in text
    assert "measured on 5 requests answered one at a time" in text
    assert "its p95 is the slowest of them" in text
    cost = run.strategies[0].cost
    assert cost is not None
    row = next(line for line in text.splitlines() if line.startswith("| prompt | fake |"))
    assert "(n=5)" in row


def test_nearest_rank_p95_of_five_is_the_slowest() -> None:
    times = [0.3, 0.1, 0.5, 0.2, 0.4]
    assert nearest_rank(times, 0.95) == 0.5 and nearest_rank(times, 0.5) == 0.3
    assert nearest_rank(list(range(1, 21)), 0.95) == 19 and nearest_rank([], 0.95) is None


def test_cost_summary_keeps_compute_and_latency_apart() -> None:
    records = [
        ItemRecord("prompt", str(i), "k", "q", "q", "a", "a", latency_s=9.0, compute_s=0.5) for i in range(4)
    ]
    cost = cost_summary(records, "fake", PriceTable([]), [1.0, 2.0], LATENCY_SAMPLE)
    assert cost.compute_s_mean == 0.5 and cost.latency_p95_s == 2.0 and cost.latency_p50_s == 1.0
    assert cost.latency_n == 2

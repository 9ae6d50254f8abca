"""benchmarks/onnx_int8.py: the greedy loop, the agreement measures against fp32 and the exam set
(the export and the timings need onnx and real packs, so they run only in the benchmark)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.helpers.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "onnx_int8.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script(SCRIPT, "onnx_int8_bench")


class CountingLM:
    """Emits token (last + 1) after every input; eos is 5. Records what it was fed."""

    def __init__(self) -> None:
        self.eos = {5}
        self.fed: list[list[int]] = []

    def _logits(self, last: int) -> np.ndarray:
        logits = np.zeros(10, dtype=np.float32)
        logits[(last + 1) % 10] = 1.0
        return logits

    def prefill(self, ids: list[int]) -> np.ndarray:
        self.fed = [list(ids)]
        return self._logits(ids[-1])

    def step(self, token: int) -> np.ndarray:
        self.fed.append([token])
        return self._logits(token)


def test_greedy_is_incremental_and_stops_at_eos_or_the_budget(bench: ModuleType) -> None:
    lm = CountingLM()
    assert bench.greedy(lm, [0, 1], 10) == [2, 3, 4, 5]  # eos 5 is kept, then it stops
    assert lm.fed == [[0, 1], [2], [3], [4]]  # one token per step after the prompt
    assert bench.greedy(lm, [6], 2) == [7, 8]
    assert lm.fed == [[6], [7]]  # no step after the last token of the budget


def test_compare_counts_identical_outputs_first_differences_and_mcq_agreement(bench: ModuleType) -> None:
    ref = {"outs": [[1, 2, 3], [1, 2, 3], [4, 5]], "picks": ["A", "B", "C", "D"]}
    got = {"outs": [[1, 2, 3], [1, 9, 3], [4]], "picks": ["A", "B", "D", "D"]}
    q = bench.compare(ref, got, ["A", "C", "C", "D"])
    assert (q.identical, q.prompts) == (1, 3)
    assert q.first_diff == [1, 1]  # of the differing ones; a shorter output differs where it stops
    assert (q.mcq_agree, q.mcq_correct, q.mcq_total) == (3, 2, 4)
    assert bench.quality_cells(q) == "1/3 | 1, 1 | 3/4 | 2/4"
    same = bench.compare(ref, ref, ["A", "B", "C", "D"])
    assert bench.quality_cells(same) == "3/3 | - | 4/4 | 4/4"


def test_exam_prompts_are_the_demo_exam_with_answer_letters(bench: ModuleType) -> None:
    prompts = bench.exam_prompts()
    assert len(prompts) == 39  # 24 val questions 5-shot, 15 dev questions 0-shot
    assert {gold for _, gold in prompts} <= set("ABCD")
    assert all(prompt.endswith("答案：") for prompt, _ in prompts)
    assert sum(prompt.count("答案：") == 6 for prompt, _ in prompts) == 24  # 5 shots + the question


def test_speed_cells_report_medians_and_the_ratio_to_bf16(bench: ModuleType) -> None:
    runs = [
        {"load_s": 1.0, "prefill_tps": 100.0, "decode_tps": 10.0, "decode_cpu_ms": 90.0, "rss_mb": 500.0},
        {"load_s": 3.0, "prefill_tps": 300.0, "decode_tps": 30.0, "decode_cpu_ms": 50.0, "rss_mb": 700.0},
        {"load_s": 2.0, "prefill_tps": 200.0, "decode_tps": 20.0, "decode_cpu_ms": 70.0, "rss_mb": 600.0},
    ]
    assert bench.speed_cells(runs, 10.0) == "2.0 | 200 | 20.0 (10.0, 30.0, 20.0) | 2.00x | 70 | 700"
    assert bench.speed_cells([], 10.0) == "- | - | - | - | - | -"

"""The real test pack (smollm2-135m), as `make test` pulls it. Marked slow; runs in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.backends.hf.local import HFLocalBackend
from assistant.settings import load_settings
from assistant.types import GenParams, user
from tests.conftest import REAL_HOME

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(real_pack_dir: Path) -> HFLocalBackend:
    return HFLocalBackend(real_pack_dir, load_settings({"home": str(REAL_HOME), "batch_size": 8}))


def test_pack_provenance(real_pack_dir: Path) -> None:
    import json

    info = json.loads((real_pack_dir / "pack.json").read_text())
    assert info["upstream"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert info["gguf_sha256"].startswith("b179c952")


def test_answers_a_simple_question(smol: HFLocalBackend) -> None:
    completion = smol.generate([user("What is the capital of France?")], GenParams(max_new_tokens=16))[0]
    assert "Paris" in completion.text
    assert completion.finish_reason in {"stop", "length"}


@pytest.mark.numerics
def test_batched_greedy_matches_one_by_one(smol: HFLocalBackend) -> None:
    prompts = ["Name a color.", "What is 2 plus 2?", "Say hello in French.", "Name a planet."]
    params = GenParams(max_new_tokens=12)
    batched = [c.text for c in smol.generate([user(p) for p in prompts], params)]
    single = [smol.generate([user(p)], params)[0].text for p in prompts]
    assert batched == single


def test_score_choices_prefers_the_true_answer(smol: HFLocalBackend, real_pack_dir: Path) -> None:
    question = "What is the capital of France?"
    choices = [f"The capital of France is {city}." for city in ("Berlin", "Paris", "London")]
    scores = smol.score_choices([question, question], choices)  # the default dtype (bf16 on AVX-512)
    assert max(range(3), key=lambda i: scores[0][i]) == 1
    assert max(range(3), key=lambda i: scores[1][i]) == 1
    # Where a row sits in the batch does not change its scores, to float32 rounding. (In bf16
    # the batch's shape moves them by bf16 rounding; tests/backends/test_hf_scoring_reference.py
    # holds every path to a bound derived from the dtype.)
    exact = HFLocalBackend(real_pack_dir, load_settings({"home": str(REAL_HOME), "dtype": "float32"}))
    scores = exact.score_choices([question, question], choices)
    assert scores[0] == pytest.approx(scores[1], abs=1e-4)


def test_single_letter_scores_are_log_probabilities(smol: HFLocalBackend) -> None:
    import math

    prompt = "Question: What is 2 + 2?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer with the letter only."
    scores = smol.score_choices([prompt], ["A", "B", "C", "D"])[0]
    assert all(s < 0 for s in scores)
    assert 0.5 < sum(math.exp(s) for s in scores) <= 1.0  # the letters take most of the mass


def test_stop_sequence_on_real_model(smol: HFLocalBackend) -> None:
    completion = smol.generate([user("Count from 1 to 10, one number per line.")],
                               GenParams(max_new_tokens=60, stop=("5",)))[0]  # fmt: skip
    assert "5" not in completion.text and "4" in completion.text
    assert completion.finish_reason == "stop"
    assert completion.usage.completion_tokens < 60

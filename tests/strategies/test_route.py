"""``route``: per-row adapter choice in one batch (tiny llama + a tiny random LoRA adapter), the
router's threshold calibration, and the strategy end to end through the service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from assistant.backends.adapter_rows import adapter_per_row
from assistant.backends.hf.local import HFLocalBackend
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.strategies.route import adapter_training_data
from assistant.strategies.router import (
    balanced_accuracy,
    calibrate_threshold,
    fit_router,
    read_questions,
)
from assistant.types import GenParams, Message, Question

PROMPTS = ["hello there", "你好，模型", "the cat sat on the mat and then", "a", "ticket 42 broken", "xyz"]


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with random (not zero) B weights, so it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(
        base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    folder = tmp_path_factory.mktemp("adapters") / "tiny-lora"
    lora.save_pretrained(str(folder))
    return folder


def chats(prompts: list[str]) -> list[list[Message]]:
    return [[Message("user", p)] for p in prompts]


def texts(backend: HFLocalBackend, prompts: list[str], rows: list[bool] | None = None) -> list[str]:
    params = GenParams(max_new_tokens=8)
    with adapter_per_row(rows):
        return [c.text for c in backend.generate(chats(prompts), params)]


@pytest.mark.numerics
def test_a_mixed_batch_gives_each_row_exactly_its_model_s_output(
    tiny_model_dir: Path, adapter_dir: Path, fast_settings: Settings
) -> None:
    plain = HFLocalBackend(tiny_model_dir, fast_settings)
    tuned = HFLocalBackend(tiny_model_dir, fast_settings, adapter=adapter_dir)
    assert tuned.mixes_adapters and not plain.mixes_adapters
    base_out, adapter_out = texts(plain, PROMPTS), texts(tuned, PROMPTS)
    differ = [i for i in range(len(PROMPTS)) if base_out[i] != adapter_out[i]]
    assert len(differ) >= 3, "the adapter must change the answers, or the test proves nothing"
    # Six rows in micro-batches of 4 (fast_settings), sorted by length inside the backend.
    rows = [True, False, False, True, False, True]
    mixed = texts(tuned, PROMPTS, rows)
    assert mixed == [adapter_out[i] if use else base_out[i] for i, use in enumerate(rows)]
    assert texts(tuned, PROMPTS, [False] * 6) == base_out
    assert texts(tuned, PROMPTS, [True] * 6) == adapter_out


def test_rows_must_match_the_batch_and_need_an_adapter(
    tiny_model_dir: Path, adapter_dir: Path, fast_settings: Settings
) -> None:
    plain = HFLocalBackend(tiny_model_dir, fast_settings)
    with pytest.raises(ValueError, match="no adapter"):
        texts(plain, PROMPTS[:2], [True, False])
    assert texts(plain, PROMPTS[:2], [False, False]) == texts(plain, PROMPTS[:2])
    tuned = HFLocalBackend(tiny_model_dir, fast_settings, adapter=adapter_dir)
    with pytest.raises(ValueError, match="2 rows for a batch of 3"):
        texts(tuned, PROMPTS[:3], [True, False])


# ---- calibration ------------------------------------------------------------------------------
def test_the_threshold_maximises_balanced_accuracy_not_plain_accuracy() -> None:
    # One in-domain question among nine general ones: "everything is general" has 90 % plain
    # accuracy but 50 % balanced accuracy; the calibrated threshold keeps the in-domain one.
    scores = [0.30, 0.0, 0.05, 0.1, 0.12, 0.15, 0.2, 0.22, 0.25, 0.35]
    labels = [True] + [False] * 9
    threshold, best = calibrate_threshold(scores, labels)
    assert best == pytest.approx((1 + 8 / 9) / 2)
    assert 0.25 < threshold < 0.30, "between the general 0.25 and the in-domain 0.30"
    assert balanced_accuracy(scores, labels, threshold) == best
    assert balanced_accuracy(scores, labels, 0.4) == 0.5


def test_a_separable_split_gets_the_midpoint_of_its_gap() -> None:
    threshold, best = calibrate_threshold([0.5, 0.6, 0.9, -0.2, 0.1, 0.3], [True] * 3 + [False] * 3)
    assert best == 1.0 and threshold == pytest.approx(0.4)


def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """A stand-in embedder: unit vectors over a hashed vocabulary."""
    import zlib

    out = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_a_fitted_router_reports_its_held_out_accuracy_and_routes_new_questions() -> None:
    domain = [f"ticket order {i} refund broken parcel queue" for i in range(20)]
    general = [f"what is the capital of country {i} in geography" for i in range(20)]
    router = fit_router(domain, general, bag_of_words, k=3, validation_fraction=0.25, seed=1)
    report = router.report
    assert report.calibrated and report.validation_items == 10
    assert report.validation_balanced_accuracy == 1.0
    assert report.in_domain_examples == 20 and report.general_examples == 20
    to_adapter, scores = router.route(["my parcel is broken, refund the order", "capital of geography"])
    assert to_adapter == [True, False] and scores[0] > router.threshold > scores[1]
    fixed = fit_router(domain, general, bag_of_words, k=3, threshold=5.0)
    assert not fixed.report.calibrated and fixed.threshold == 5.0
    assert fixed.report.validation_balanced_accuracy == 0.5, "nothing clears 5.0: every item general"
    with pytest.raises(ConfigError, match="at least 2"):
        fit_router(domain[:1], general, bag_of_words)


def test_training_rows_tagged_general_count_as_general(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "route ticket A"}, {"role": "assistant", "content": "Q1"}]},
        {"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"}],
         "tags": ["general"]},
        {"instruction": "route this", "input": "ticket B", "output": "Q2"},
        {"user_input": "ticket C"},
    ]  # fmt: skip
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert read_questions([path]) == (["route ticket A", "route this\n\nticket B", "ticket C"], ["2 + 2?"])


# ---- the strategy -----------------------------------------------------------------------------
def write_router_data(folder: Path) -> tuple[Path, Path]:
    domain = [
        f"Route this support ticket: my {thing} arrived {state}, order {i}"
        for i, (thing, state) in enumerate(
            (t, s) for t in ("kettle", "pillow", "blender", "lamp") for s in ("broken", "late", "wet")
        )
    ]
    general = [
        "What is the capital of France?", "How many legs does a spider have?", "What is 7 times 8?",
        "Who wrote Hamlet?", "What colour is the sky on a clear day?", "Translate 'cat' into French.",
        "How many days are in a leap year?", "What is the boiling point of water?",
        "Name a prime number above 10.", "What is the largest ocean?", "Spell the word 'banana'.",
        "What is the square root of 81?",
    ]  # fmt: skip
    train = folder / "train.jsonl"
    train.write_text("\n".join(json.dumps({"user_input": q}) for q in domain), encoding="utf-8")
    gen = folder / "general.jsonl"
    gen.write_text("\n".join(json.dumps({"instruction": q, "input": ""}) for q in general), encoding="utf-8")
    return train, gen


def test_route_answers_in_domain_questions_with_the_adapter_and_the_rest_with_the_base(
    tiny_model_dir: Path, adapter_dir: Path, fast_settings: Settings, tmp_path: Path
) -> None:
    from assistant.service import answer_questions

    train, general = write_router_data(tmp_path)
    questions = [
        Question("Route this support ticket: my kettle arrived cracked, order 99"),
        Question("What is the capital of Italy?"),
        Question("Who painted the Mona Lisa?"),
        Question("Route this support ticket: my lamp arrived late, order 7"),
    ]
    spec = {"strategy": "route", "in_domain": [str(train)], "general": [str(general)], "k": 3,
            "max_new_tokens": 8}  # fmt: skip
    model = f"{tiny_model_dir}+{adapter_dir}"
    answers = answer_questions(questions, spec, settings=fast_settings, model=model)
    routes = [next(s.detail for s in a.trace.steps if s.kind == "route") for a in answers]
    assert [r["to"] for r in routes] == ["adapter", "base", "base", "adapter"]
    assert all(r["router_ms"] > 0 and r["batch"] == 4 and "MiniLM" in r["embedder"] for r in routes)
    plain = HFLocalBackend(tiny_model_dir, fast_settings)
    tuned = HFLocalBackend(tiny_model_dir, fast_settings, adapter=adapter_dir)
    prompts = [q.user_input for q in questions]
    base_out, adapter_out = texts(plain, prompts), texts(tuned, prompts)
    assert base_out != adapter_out
    expected = [adapter_out[0], base_out[1], base_out[2], adapter_out[3]]
    assert [a.response for a in answers] == expected


def test_route_needs_an_adapter_and_finds_its_training_data_in_the_manifest(
    tiny_model_dir: Path, adapter_dir: Path, fast_settings: Settings, tmp_path: Path
) -> None:
    from assistant.service import build_strategy

    with pytest.raises(ConfigError, match="needs a local model with a LoRA adapter"):
        build_strategy("route", fast_settings, model=str(tiny_model_dir))
    with pytest.raises(ConfigError, match="validation_fraction"):
        build_strategy({"strategy": "route", "validation_fraction": 1.0}, fast_settings,
                       model=f"{tiny_model_dir}+{adapter_dir}")  # fmt: skip
    assert adapter_training_data(adapter_dir) is None, "no manifest"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("{}\n", encoding="utf-8")
    with_manifest = tmp_path / "with-manifest"
    with_manifest.mkdir()
    (with_manifest / "manifest.json").write_text(json.dumps({"data": {"path": str(tmp_path / "data")}}))
    assert adapter_training_data(with_manifest) == tmp_path / "data" / "train.jsonl"
    strategy = build_strategy("route", fast_settings, model=f"{tiny_model_dir}+{adapter_dir}")
    with pytest.raises(ConfigError, match="no in-domain data"):
        strategy.answer([Question("hello")])


def test_ladder_ask_routes_through_the_cli(
    tiny_model_dir: Path, adapter_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_helpers import run

    train, general = write_router_data(tmp_path)
    config = tmp_path / "route.yaml"
    config.write_text(
        f"strategy: route\nin_domain: ['{train}']\ngeneral: ['{general}']\nk: 3\nmax_new_tokens: 4\n",
        encoding="utf-8",
    )
    model = f"{tiny_model_dir}+{adapter_dir}"
    code, out, err = run(["ask", "Who wrote Hamlet?", "--strategy", str(config), "--model", model,
                          "--json", "--threads", "1"], capsys)  # fmt: skip
    assert code == 0, err
    trace = json.loads(out)["trace"]
    assert trace[0]["kind"] == "route" and trace[0]["detail"]["to"] == "base"
    code, _, err = run(["ask", "hello", "--strategy", "route", "--model", str(tiny_model_dir)], capsys)
    assert code == 2 and "needs a local model with a LoRA adapter" in err

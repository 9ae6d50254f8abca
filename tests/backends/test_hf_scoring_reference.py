"""``score_choices`` on every path (prompts scored whole, a shared prefix reused with packed
suffixes, packed into small rows, or in padded micro-batches) equals the log-softmax of a
plain forward, one prompt + choice at a time, to within a bound derived from the dtype and
the depth of the model (``tests.helpers.numerics``); and whatever the model's dtype, the
log-probabilities come from a float32 projection of the last hidden states, never from bf16
logits (which move in steps of 0.25 between 32 and 64 and tie multiple-choice options).

Marked ``numerics``: ``make test`` runs these again under every ``ATEN_CPU_CAPABILITY`` the
machine supports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from assistant.backends.hf.local import HFLocalBackend
from assistant.backends.hf.scoring import float32_head
from assistant.settings import load_settings
from tests.helpers.numerics import tolerance

pytestmark = pytest.mark.numerics

HEADER = (
    "The following are questions about the cat and the mat. Answer with the letter only.\n"
    "Q: the cat sat on the mat. Where is the cat?\nA. on the mat\nB. in a box\nAnswer: A\n\n"
)
SUFFIXES = ["Q: a\nAnswer:", "Q: the cat\nAnswer:", "Q: is the mat red and the cat big and old?\nAnswer:",
            "Q: 你好，模型\nAnswer:", "Q: on\nAnswer:",
            "Q: the mat is on the cat and then the end\nAnswer:"]  # fmt: skip
PROMPTS = [HEADER + s for s in SUFFIXES] + ["hello there", "x y z"]
LETTERS = ["A", "B", "C", "D"]
PHRASES = [" on the mat", " in a box please", " B", " the end"]
# path name -> (reuse_prefix, pack_tokens)
PATHS = {"whole": (False, 256), "packed": (True, 256), "packed-small-rows": (True, 12), "padded": (True, 0)}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def reference(backend: HFLocalBackend, prompt: str, choices: list[str]) -> list[tuple[float, float]]:
    """Each choice's log-probability after the raw prompt from an unpadded forward pass of
    prompt + choice alone (one pass for all one-token choices), with a float32 head; and the
    largest |logit| it saw, the scale of the rounding error."""
    prompt_ids = backend.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    choice_ids = [backend.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    continuations = [[]] if all(len(ids) == 1 for ids in choice_ids) else choice_ids
    results: dict[int, tuple[float, float]] = {}
    for continuation in continuations:
        with torch.inference_mode(), float32_head(backend.model, {}):
            logits = backend.model(input_ids=torch.tensor([prompt_ids + continuation])).logits[0]
        assert logits.dtype == torch.float32
        logprobs = torch.log_softmax(logits, dim=-1)
        for index, ids in enumerate(choice_ids):
            if continuation and ids != continuation:
                continue
            value = sum(float(logprobs[len(prompt_ids) - 1 + i, token]) for i, token in enumerate(ids))
            results[index] = (value, float(logits.abs().max()))
    return [results[i] for i in range(len(choices))]


def check_every_path(backend: HFLocalBackend, dtype: torch.dtype, prompts: list[str]) -> None:
    depth = int(backend.model.config.num_hidden_layers)
    for choices in (LETTERS, PHRASES):
        want = [reference(backend, p, choices) for p in prompts]
        for name, (reuse, pack) in PATHS.items():
            backend.reuse_prefix, backend.pack_tokens = reuse, pack
            try:
                got = backend.score_choices(prompts, choices, chat_template=False)
            finally:
                backend.reuse_prefix, backend.pack_tokens = True, 256
            for prompt, got_row, want_row in zip(prompts, got, want, strict=True):
                for choice, value, (expected, scale) in zip(choices, got_row, want_row, strict=True):
                    n_tokens = len(backend.tokenizer(choice, add_special_tokens=False)["input_ids"])
                    bound = n_tokens * tolerance(dtype, depth, scale)
                    assert abs(value - expected) <= bound, (
                        f"{name} {dtype}: {prompt[-24:]!r} + {choice!r}: {value:.6f} vs {expected:.6f} "
                        f"(bound {bound:.3g})"
                    )


def head_inputs_and_scores(backend: HFLocalBackend, prompts: list[str]) -> tuple[torch.Tensor, Any]:
    """Scores of the letters, one prompt per call, and the last hidden state the head saw."""
    seen: list[torch.Tensor] = []
    head = backend.model.get_output_embeddings()
    handle = head.register_forward_pre_hook(
        lambda _module, args: seen.append(args[0][:, -1].detach().clone())
    )
    try:
        scores = [backend.score_choices([p], LETTERS, chat_template=False)[0] for p in prompts]
    finally:
        handle.remove()
    assert len(seen) == len(prompts), "one forward pass per prompt"
    return torch.cat(seen), scores


def scoring_backend(folder: Path, home: Path, dtype_name: str) -> HFLocalBackend:
    settings = load_settings({"home": str(home), "threads": 1, "dtype": dtype_name, "batch_size": 3})
    backend = HFLocalBackend(folder, settings)
    assert backend.model.dtype == DTYPES[dtype_name]
    return backend


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_every_path_equals_a_plain_forward_on_the_tiny_model(
    tiny_model_dir: Path, tmp_path: Path, dtype_name: str
) -> None:
    check_every_path(scoring_backend(tiny_model_dir, tmp_path, dtype_name), DTYPES[dtype_name], PROMPTS)


def test_bf16_scores_come_from_a_float32_projection(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = load_settings({"home": str(tmp_path), "threads": 1, "dtype": "bfloat16", "batch_size": 8})
    backend = HFLocalBackend(tiny_model_dir, settings)
    # Scale the head so logits reach 32-64, where bf16 moves in steps of 0.25.
    head = backend.model.get_output_embeddings()
    hidden, _ = head_inputs_and_scores(backend, PROMPTS[:4])
    with torch.no_grad():
        head.weight.mul_(56.0 / float((hidden.float() @ head.weight.float().T).abs().max()))
    hidden, scores = head_inputs_and_scores(backend, PROMPTS[:4])
    with torch.no_grad():
        logits = hidden.float() @ head.weight.float().T
    assert float(logits.abs().max()) > 32, "the test must reach bf16's coarse range"
    letters = [backend.tokenizer(x, add_special_tokens=False)["input_ids"][0] for x in LETTERS]
    want = torch.log_softmax(logits, dim=-1)[:, letters]
    got = torch.tensor(scores)
    # A float32 projection of the same hidden states: float32 rounding only. bf16 logits
    # would be off by up to 0.125 here.
    assert float((got - want).abs().max()) <= tolerance(torch.float32, hidden.shape[-1], 64.0)
    # and the head is back to its own forward afterwards
    assert "forward" not in vars(head)


def test_float32_head_leaves_a_float32_model_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = load_settings({"home": str(tmp_path), "threads": 1, "dtype": "float32"})
    backend = HFLocalBackend(tiny_model_dir, settings)
    cache: dict[str, Any] = {}
    with float32_head(backend.model, cache):
        assert "forward" not in vars(backend.model.get_output_embeddings())
    assert cache == {}  # no second copy of the weights


@pytest.mark.slow
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_every_path_equals_a_plain_forward_on_the_real_pack(
    real_pack_dir: Path, tmp_path: Path, dtype_name: str
) -> None:
    backend = scoring_backend(real_pack_dir, tmp_path, dtype_name)
    # Three prompts of a family that shares a prefix, and two strays: every path still runs.
    check_every_path(backend, DTYPES[dtype_name], [*PROMPTS[1:4], *PROMPTS[-2:]])
    if dtype_name == "bfloat16":
        # The bug this guards against: log-probabilities on bf16's grid, options tied.
        scores = backend.score_choices(PROMPTS, LETTERS, chat_template=False)
        steps = {round((a - b) * 4, 6) % 1 for row in scores for a in row for b in row}
        assert steps != {0.0}, "option scores differ only by multiples of 0.25: bf16 logits"


def test_close_bf16_calls_are_scored_again_in_float32(tiny_model_dir: Path, tmp_path: Path) -> None:
    def backend(dtype: str, margin: float) -> HFLocalBackend:
        values = {"home": str(tmp_path), "threads": 1, "dtype": dtype, "score_recheck_margin": margin}
        return HFLocalBackend(tiny_model_dir, load_settings(values))

    exact = backend("float32", 0.25).score_choices(PROMPTS, LETTERS, chat_template=False)
    fast = backend("bfloat16", 0.0)
    plain = fast.score_choices(PROMPTS, LETTERS, chat_template=False)
    assert fast._float32_twin is None, "margin 0: bf16 only, no float32 copy"
    gaps = sorted(sorted(row)[-1] - sorted(row)[-2] for row in plain)
    margin = (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2  # half the calls are close
    mixed = backend("bfloat16", margin)
    rechecked = mixed.score_choices(PROMPTS, LETTERS, chat_template=False)
    close = 0
    for bf16_row, row, fp32_row in zip(plain, rechecked, exact, strict=True):
        top = sorted(bf16_row)
        if top[-1] - top[-2] < margin:
            close += 1
            assert row == pytest.approx(fp32_row, abs=tolerance(torch.float32, 2, 64.0)), "close: float32"
        else:
            assert row == pytest.approx(bf16_row, abs=1e-6), "clear: bf16 kept"
    assert close == len(PROMPTS) // 2
    assert mixed.model.dtype == torch.bfloat16, "the bf16 model is back in place"
    assert mixed._float32_twin.dtype == torch.float32

"""A prompt-tuning adapter in the local backend (``+<adapter>``): its virtual tokens run as a
KV-cache prefix of the base model (``virtual_prefix``), and every scoring path (the prompt whole,
a shared prefix reused with packed suffixes, padded micro-batches after a prefix) and greedy
generation of left-padded batches give what peft's own ``PeftModel`` computes for one unpadded
example at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from assistant.backends.hf.local import HFLocalBackend
from assistant.settings import load_settings
from assistant.types import GenParams, Message

HEADER = "The following are questions about the cat and the mat. Answer with the letter only.\n"
PROMPTS = [HEADER + s for s in ("Q: a\nAnswer:", "Q: the cat is on\nAnswer:", "Q: mat\nAnswer:")] + ["x y"]
PATHS = {"whole": (False, 256), "packed": (True, 256), "padded": (True, 0)}


@pytest.fixture(scope="module")
def prompt_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prompt-tuning adapter of 5 virtual tokens with random (so, influential) embeddings."""
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model: Any = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5))
    with torch.no_grad():
        embedding = model.prompt_encoder["default"].embedding.weight
        embedding.copy_(torch.randn_like(embedding) * 2)
    folder = tmp_path_factory.mktemp("prompt") / "adapter"
    model.save_pretrained(str(folder))
    return folder


def _peft_reference(tiny_model_dir: Path, adapter: Path) -> torch.nn.Module:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return PeftModel.from_pretrained(base, str(adapter)).eval()


def _backend(tiny_model_dir: Path, adapter: Path | None) -> HFLocalBackend:
    settings = load_settings({"threads": 1, "dtype": "float32", "batch_size": 4})
    return HFLocalBackend(tiny_model_dir, settings, adapter=adapter)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_scores_equal_peft_one_example_at_a_time(
    tiny_model_dir: Path, prompt_adapter: Path, path: str
) -> None:
    backend = _backend(tiny_model_dir, prompt_adapter)
    assert backend.adapter_kind == "prompt-tuning" and not backend.mixes_adapters
    backend.reuse_prefix, backend.pack_tokens = PATHS[path]
    choices = [" A", " the mat", " B"]
    got = backend.score_choices(PROMPTS, choices, chat_template=False)
    reference = _peft_reference(tiny_model_dir, prompt_adapter)
    plain = _backend(tiny_model_dir, None).score_choices(PROMPTS, choices, chat_template=False)
    tok = backend.tokenizer
    for row, prompt in enumerate(PROMPTS):
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        for col, choice in enumerate(choices):
            ids = tok(choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = reference(input_ids=torch.tensor([prompt_ids + ids])).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)[-len(prompt_ids + ids) :]
            expected = sum(float(logprobs[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(ids))
            assert got[row][col] == pytest.approx(expected, abs=2e-4), (path, prompt, choice)
    assert (
        max(abs(a - b) for r, p in zip(got, plain, strict=True) for a, b in zip(r, p, strict=True)) > 0.01
    ), "the virtual tokens change the scores"


def test_greedy_generation_of_a_padded_batch_equals_peft_alone(
    tiny_model_dir: Path, prompt_adapter: Path
) -> None:
    backend = _backend(tiny_model_dir, prompt_adapter)
    reference = _peft_reference(tiny_model_dir, prompt_adapter)
    conversations = [[Message("user", "hello")], [Message("user", "the cat sat on the mat and then it")]]
    params = GenParams(max_new_tokens=6, temperature=0.0)
    got = backend.generate(conversations, params)
    for conversation, completion in zip(conversations, got, strict=True):
        ids = backend.tokenizer(backend.render(conversation), add_special_tokens=False)["input_ids"]
        produced: list[int] = []
        for _ in range(6):  # greedy, one full forward per token: no cache, no padding
            with torch.no_grad():
                logits = reference(input_ids=torch.tensor([ids + produced])).logits[0, -1]
            token = int(logits.argmax())
            produced.append(token)
            if token in backend._eos_ids:
                break
        text = backend.tokenizer.decode(
            [t for t in produced if t not in backend._eos_ids], skip_special_tokens=True
        )
        assert completion.text == text.strip()

"""hf_local on a tiny random llama converted from a GGUF we write (fast, no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from assistant.backends.hf.device import pick_dtype
from assistant.backends.hf.local import HFLocalBackend
from assistant.errors import ContextOverflowError, ModelNotFoundError
from assistant.settings import Settings, replace
from assistant.types import GenParams, Message, user

PROMPTS = ["hello there", "你好，模型", "the cat sat on the mat and then", "a"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> HFLocalBackend:
    from assistant.settings import load_settings

    home = tmp_path_factory.mktemp("home")
    settings = load_settings({"home": str(home), "threads": 1, "dtype": "float32", "batch_size": 3})
    return HFLocalBackend(tiny_model_dir, settings)


@pytest.mark.numerics
def test_batched_greedy_equals_one_by_one(backend: HFLocalBackend) -> None:
    params = GenParams(max_new_tokens=12)
    batched = backend.generate([user(p) for p in PROMPTS], params)
    single = [backend.generate([user(p)], params)[0] for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.usage for c in batched] == [c.usage for c in single]
    # Distinct prompts give distinct continuations: the batch was not mixed up.
    assert len({c.text for c in batched}) > 1


def test_usage_counts_prompt_and_completion_tokens(backend: HFLocalBackend) -> None:
    conversation = [Message("system", "be brief"), Message("user", "hello there")]
    completion = backend.generate([conversation], GenParams(max_new_tokens=7))[0]
    rendered = backend.render(conversation)
    assert rendered.endswith("<|im_start|>assistant\n")
    expected_prompt = len(backend.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert completion.usage.prompt_tokens == expected_prompt
    assert 1 <= completion.usage.completion_tokens <= 7
    assert completion.usage.model_calls == 1
    assert completion.latency_s > 0
    assert completion.model_id == backend.model_id


def test_max_tokens_limit_reports_length(backend: HFLocalBackend) -> None:
    completions = backend.generate([user(p) for p in PROMPTS], GenParams(max_new_tokens=3))
    for completion in completions:
        assert completion.usage.completion_tokens <= 3
        if completion.usage.completion_tokens == 3:
            assert completion.finish_reason == "length"


def test_stop_sequence_cuts_the_answer(backend: HFLocalBackend) -> None:
    free = backend.generate([user("hello there")], GenParams(max_new_tokens=24))[0].text
    # The random model emits arbitrary bytes; stop on a plain-ASCII stretch of its output.
    start = next(
        i for i in range(2, len(free) - 1) if free[i : i + 2].isascii() and free[i : i + 2].isalnum()
    )
    stop = free[start : start + 2]
    cut = backend.generate([user("hello there")], GenParams(max_new_tokens=24, stop=(stop,)))[0]
    assert stop not in cut.text
    assert free.startswith(cut.text.strip()) or cut.text.strip() == free[: free.find(stop)].strip()
    assert cut.finish_reason == "stop"
    assert cut.usage.completion_tokens < 24


def test_sampling_is_seeded(backend: HFLocalBackend) -> None:
    params = GenParams(max_new_tokens=10, temperature=1.5, seed=7)
    first = backend.generate([user("hello")], params)[0].text
    again = backend.generate([user("hello")], params)[0].text
    other = [backend.generate([user("hello")], GenParams(max_new_tokens=10, temperature=1.5, seed=s))[0].text
             for s in range(8, 12)]  # fmt: skip
    assert first == again
    assert any(text != first for text in other)


def _manual_logprob(backend: HFLocalBackend, prompt: str, continuation: str) -> float:
    rendered = backend.render([Message("user", prompt)])
    assert rendered.startswith("<|im_start|>user\n") and rendered.endswith("assistant\n")
    prompt_ids = backend.tokenizer(rendered, add_special_tokens=False)["input_ids"]
    choice_ids = backend.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + choice_ids])
    with torch.inference_mode():
        logprobs = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), dim=-1)
    return float(sum(logprobs[len(prompt_ids) - 1 + i, tok] for i, tok in enumerate(choice_ids)))


@pytest.mark.numerics
def test_score_choices_single_token_matches_unpadded_forward(backend: HFLocalBackend) -> None:
    prompts = ["Question: pick one\nAnswer:", "x", "the cat sat on the mat. Which? Answer:"]
    choices = ["A", "B", "C", "D"]
    scores = backend.score_choices(prompts, choices)
    assert len(scores) == 3 and all(len(row) == 4 for row in scores)
    for prompt, row in zip(prompts, scores, strict=True):
        for choice, value in zip(choices, row, strict=True):
            assert value == pytest.approx(_manual_logprob(backend, prompt, choice), abs=1e-4)


@pytest.mark.numerics
def test_score_choices_multi_token_matches_unpadded_forward(backend: HFLocalBackend) -> None:
    prompts = ["the capital is", "你好"]
    choices = [" the mat", " a", "模型很好"]
    scores = backend.score_choices(prompts, choices)
    for prompt, row in zip(prompts, scores, strict=True):
        for choice, value in zip(choices, row, strict=True):
            assert value == pytest.approx(_manual_logprob(backend, prompt, choice), abs=1e-4)


def test_overlong_prompt_is_truncated_with_a_flag(backend: HFLocalBackend) -> None:
    long_prompt = "the cat sat on the mat " * 200  # far over the 256-token context
    completion = backend.generate([user(long_prompt)], GenParams(max_new_tokens=8))[0]
    assert completion.prompt_truncated
    assert completion.usage.prompt_tokens <= backend.context_window - 8


def test_overlong_prompt_refused_under_error_policy(tiny_model_dir: Path, fast_settings: Settings) -> None:
    strict = HFLocalBackend(tiny_model_dir, replace(fast_settings, context_overflow="error"))
    with pytest.raises(ContextOverflowError, match="tokens"):
        strict.generate([user("the cat sat " * 300)], GenParams(max_new_tokens=8))


def test_thread_count_comes_from_settings(tiny_model_dir: Path, fast_settings: Settings) -> None:
    before = torch.get_num_threads()
    try:
        HFLocalBackend(tiny_model_dir, replace(fast_settings, threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_auto_dtype_is_measured_once_and_remembered(tmp_path: Path) -> None:
    chosen = pick_dtype("auto", "cpu", tmp_path)
    profile = json.loads((tmp_path / "cpu_profile.json").read_text())
    assert profile["faster"] in {"float32", "bfloat16"}
    assert profile["float32_s"] > 0 and profile["bfloat16_s"] > 0
    assert chosen == getattr(torch, profile["faster"])
    assert pick_dtype("bfloat16", "cpu", tmp_path) == torch.bfloat16
    assert pick_dtype("float32", "cpu", tmp_path) == torch.float32
    # Another home in the same process gets this process's measurement, written there too.
    other = tmp_path / "other-home"
    assert pick_dtype("auto", "cpu", other) == chosen
    assert json.loads((other / "cpu_profile.json").read_text()) == profile


def test_bf16_backend_generates(tiny_model_dir: Path, fast_settings: Settings) -> None:
    bf16 = HFLocalBackend(tiny_model_dir, replace(fast_settings, dtype="bfloat16"))
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert bf16.generate([user("hello")], GenParams(max_new_tokens=4))[0].usage.completion_tokens > 0


def test_peft_adapter_changes_the_model(
    tiny_model_dir: Path, fast_settings: Settings, tmp_path: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(
        base_model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    adapter_dir = tmp_path / "my-adapter"
    lora.save_pretrained(adapter_dir)

    plain = HFLocalBackend(tiny_model_dir, fast_settings)
    tuned = HFLocalBackend(tiny_model_dir, fast_settings, adapter=adapter_dir)
    assert tuned.model_id.endswith("+my-adapter")
    from peft import PeftModel

    assert isinstance(tuned.model, PeftModel)
    prompt = ["hello there"]
    assert plain.score_choices(prompt, ["A", "B"]) != tuned.score_choices(prompt, ["A", "B"])


def test_folder_that_is_not_a_model(tmp_path: Path, fast_settings: Settings) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        HFLocalBackend(tmp_path, fast_settings)


def test_chat_model_adapter_over_hf_local(backend: HFLocalBackend) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    reply = backend.chat_model().invoke(
        [SystemMessage("be brief"), HumanMessage("hello there")], max_tokens=5
    )
    direct = backend.generate([[Message("system", "be brief"), Message("user", "hello there")]],
                              GenParams(max_new_tokens=5))[0]  # fmt: skip
    assert reply.content == direct.text
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == direct.usage.completion_tokens


@pytest.mark.parametrize("prompt", PROMPTS)
def test_one_conversation_streams_the_text_it_returns(backend: HFLocalBackend, prompt: str) -> None:
    from assistant.backends.streaming import stream_to

    params = GenParams(max_new_tokens=24)
    plain = backend.generate([user(prompt)], params)[0]
    sent: list[str] = []
    with stream_to(sent.append):
        streamed = backend.generate([user(prompt)], params)[0]
    assert (streamed.text, streamed.usage, streamed.finish_reason) == (plain.text, plain.usage,
                                                                       plain.finish_reason)  # fmt: skip
    assert "".join(sent) == streamed.text and len(sent) > 1 and all(sent)
    # The random model emits arbitrary bytes: a character split over byte tokens decodes to
    # U+FFFD until its last byte arrives, and is held back until then.
    assert not any(delta.endswith("\ufffd") for delta in sent[:-1])


def test_a_stream_stops_before_the_stop_string_and_a_batch_does_not_stream(backend: HFLocalBackend) -> None:
    from assistant.backends.streaming import stream_to

    prompt = "the cat sat on the mat and then"
    free = backend.generate([user(prompt)], GenParams(max_new_tokens=24))[0].text
    # The last plain-ASCII pair of the free answer: a stop string with text streamed before it.
    start = max(i for i in range(len(free) - 1) if free[i : i + 2].isascii() and free[i : i + 2].isalnum())
    stop = free[start : start + 2]
    sent: list[str] = []
    with stream_to(sent.append):
        cut = backend.generate([user(prompt)], GenParams(max_new_tokens=24, stop=(stop,)))[0]
        batch = backend.generate([user("hello there"), user("a")], GenParams(max_new_tokens=4))
    assert cut.finish_reason == "stop" and stop not in cut.text and len(cut.text) >= 2
    assert "".join(sent) == cut.text and len(sent) > 1
    assert len(batch) == 2 and "".join(sent) == cut.text  # the batch sent nothing


def test_auto_dtype_measures_again_on_another_cpu_or_instruction_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LADDER_HOME moved to another CPU kind, or a run with the matmul libraries capped to
    AVX2 (the numerics reruns), must not reuse a choice measured elsewhere."""
    from assistant.backends.hf import device

    timings = {torch.float32: 1.0, torch.bfloat16: 0.5}
    monkeypatch.setattr(device, "_measure_matmul", lambda dtype, repeats=12: timings[dtype])
    assert pick_dtype("auto", "cpu", tmp_path) == torch.bfloat16
    timings[torch.bfloat16] = 20.0  # as if bf16 were emulated: capped to AVX2
    assert pick_dtype("auto", "cpu", tmp_path) == torch.bfloat16, "same machine, same settings: remembered"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert pick_dtype("auto", "cpu", tmp_path) == torch.float32, "another instruction set: measured again"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(device, "_cpu_model", lambda: "Another CPU @ 2.0GHz")
    assert pick_dtype("auto", "cpu", tmp_path) == torch.float32, "another CPU model: measured again"
    profile = json.loads((tmp_path / "cpu_profile.json").read_text())
    assert "Another CPU" in profile["key"]

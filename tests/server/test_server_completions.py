"""``ladder serve``'s ``/v1/completions`` over a real local model (the tiny llama), on a real
loopback socket: echo logprobs against a direct forward pass, the same exam scores through the
endpoint as with the local backend, generation, and adapter-by-name routing (only the adapters
the operator listed; ``openai:<adapter>@<url>`` asks for one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import torch

from assistant.backends.hf.local import HFLocalBackend
from assistant.backends.openai_compat import OpenAICompatBackend
from assistant.settings import Settings, load_settings
from tests.openai_server import serve
from tests.server.helpers import KEY, client

# float32 on both sides; the endpoint and the local backend run the same forward, so their
# logprobs agree to float32 rounding (different batch shapes: ~1e-6), far under this.
TOLERANCE = 1e-4
PROMPTS = [
    "Question: which is a colour?\nA. red\nB. seven\nC. run\nD. under\nAnswer:",
    "Question: how many legs has a cat?\nA. two\nB. four\nC. six\nD. none\nAnswer:",
    "hello world",
]


@pytest.fixture
def fp32(isolated_home: Path) -> Settings:
    return load_settings({"threads": 1, "dtype": "float32", "batch_size": 4})


@pytest.fixture
def local(tiny_model_dir: Path, fp32: Settings) -> HFLocalBackend:
    return HFLocalBackend(tiny_model_dir, fp32)


@contextmanager
def ladder_serve(settings: Settings, backend: Any = None, **flags: Any) -> Iterator[str]:
    from ui.server.app import create_app
    from ui.server.config import server_config

    values: dict[str, Any] = {"model": "fake", "api_keys": [KEY], **flags}
    app = create_app(settings, server_config(settings, **values), backend=backend)
    with serve(app) as url:
        yield url


def direct_logprobs(model: Any, ids: list[int]) -> list[float]:
    """log P(token t | tokens < t) for t >= 1, from one plain forward pass."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return [float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))]


def test_echo_logprobs_are_a_direct_forward_pass(local: HFLocalBackend, fp32: Settings) -> None:
    # Texts sharing a prompt (its prefix runs once, then each text's own tokens), and a short
    # text that shares nothing (run whole).
    for texts in ([PROMPTS[0] + " B", PROMPTS[0] + " A"], ["hello world"], [PROMPTS[1], "hello world"]):
        with ladder_serve(fp32, local) as url:
            reply = client(url).completions.create(
                model="fake", prompt=texts, echo=True, logprobs=3, max_tokens=0
            )
        assert reply.object == "text_completion" and len(reply.choices) == len(texts)
        for choice, text in zip(sorted(reply.choices, key=lambda c: c.index), texts, strict=True):
            lp = choice.logprobs
            ids = local.tokenizer(text, add_special_tokens=False)["input_ids"]
            assert choice.text == text and "".join(lp.tokens) == text
            assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
            assert all(text.startswith(tok, off) for tok, off in zip(lp.tokens, lp.text_offset, strict=True))
            assert len(lp.tokens) == len(ids)
            assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
            expected = direct_logprobs(local.model, ids)
            assert max(abs(a - b) for a, b in zip(lp.token_logprobs[1:], expected, strict=True)) < TOLERANCE
            for chosen, top in zip(lp.token_logprobs[1:], lp.top_logprobs[1:], strict=True):
                assert 1 <= len(top) <= 3 and max(top.values()) >= chosen - TOLERANCE
        assert reply.usage.prompt_tokens == sum(
            len(local.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts
        )


def test_the_same_exam_scores_through_the_endpoint(local: HFLocalBackend, fp32: Settings) -> None:
    """Raw prompts (an exam suite's default), single-letter and multi-token choices."""
    with ladder_serve(fp32, local) as url:
        endpoint = OpenAICompatBackend("fake", url, api_key=KEY, settings=fp32)
        for choices in (["A", "B", "C", "D"], [" red", " four legs", " seven"]):
            remote = endpoint.score_choices(PROMPTS, choices, chat_template=False)
            here = local.score_choices(PROMPTS, choices, chat_template=False)
            for a, b in zip(remote, here, strict=True):
                assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < TOLERANCE
                assert a.index(max(a)) == b.index(max(b))


def test_generation_without_echo(local: HFLocalBackend, fp32: Settings) -> None:
    prompt = "hello world"
    ids = local.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        out = local.model.generate(input_ids=torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    expected = local.tokenizer.decode(out[0, len(ids) :].tolist(), skip_special_tokens=True)
    with ladder_serve(fp32, local) as url:
        reply = client(url).completions.create(model="fake", prompt=prompt, max_tokens=4, logprobs=1)
        plain = client(url).completions.create(model="fake", prompt=prompt, max_tokens=4)
    choice = reply.choices[0]
    assert choice.text == expected and plain.choices[0].text == expected and plain.choices[0].logprobs is None
    assert "".join(choice.logprobs.tokens) == expected
    assert choice.logprobs.text_offset[0] == len(prompt)  # offsets count from the prompt's start
    assert all(lp is not None and lp <= 0 for lp in choice.logprobs.token_logprobs)


def test_bad_requests(local: HFLocalBackend, fp32: Settings, tmp_path: Path) -> None:
    with ladder_serve(fp32, local) as url:
        no_key = client(url, key="wrong")
        with pytest.raises(openai.AuthenticationError):
            no_key.completions.create(model="fake", prompt="x", max_tokens=0, echo=True)
        ask = client(url).completions.create
        with pytest.raises(openai.NotFoundError):  # not a name the server offers
            ask(model=str(tmp_path), prompt="x", max_tokens=0, echo=True)
        with pytest.raises(openai.BadRequestError, match="strategy"):  # offered, but a strategy
            ask(model="reflection", prompt="x", max_tokens=0, echo=True)
        with pytest.raises(openai.BadRequestError, match="echo"):
            ask(model="fake", prompt="x", max_tokens=0)
        with pytest.raises(openai.BadRequestError):
            ask(model="fake", prompt=[[1, 2, 3]], max_tokens=0, echo=True)  # token ids: not served


def save_adapter(model_dir: Path, folder: Path, seed: int) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(folder)


def test_an_adapter_is_asked_for_by_name(tiny_model_dir: Path, fp32: Settings, local: HFLocalBackend) -> None:
    save_adapter(tiny_model_dir, fp32.adapters_dir / "routing", seed=1)
    save_adapter(tiny_model_dir, fp32.adapters_dir / "other", seed=2)  # registered, not offered
    tuned = HFLocalBackend(tiny_model_dir, fp32, adapter=fp32.adapters_dir / "routing")
    model = str(tiny_model_dir)
    with ladder_serve(fp32, model=model, adapters=["routing"]) as url:
        names = [m.id for m in client(url).models.list().data]
        assert "routing" in names and "other" not in names
        ask = client(url).completions.create
        for invented in ("other", f"{model}+other", "../adapters/other", str(fp32.adapters_dir / "other")):
            with pytest.raises(openai.NotFoundError):
                ask(model=invented, prompt="x", max_tokens=0, echo=True)
        # openai:<adapter>@<url> asks for the adapter by name, as with vLLM's --lora-modules.
        from assistant.backends.load import load_backend

        by_name = load_backend(f"openai:routing@{url}", replace_key(fp32))
        base = load_backend(f"openai:{model}@{url}", replace_key(fp32))
        remote = by_name.score_choices(PROMPTS, ["A", "B", "C", "D"], chat_template=False)
        remote_base = base.score_choices(PROMPTS, ["A", "B", "C", "D"], chat_template=False)
        chat = client(url).chat.completions.create(
            model="routing", messages=[{"role": "user", "content": "hello"}], max_tokens=3
        )
    here = tuned.score_choices(PROMPTS, ["A", "B", "C", "D"], chat_template=False)
    here_base = local.score_choices(PROMPTS, ["A", "B", "C", "D"], chat_template=False)
    assert (
        max(abs(x - y) for a, b in zip(remote, here, strict=True) for x, y in zip(a, b, strict=True))
        < TOLERANCE
    )
    assert max(
        abs(x - y) for a, b in zip(remote_base, here_base, strict=True) for x, y in zip(a, b, strict=True)
    ) < (TOLERANCE)
    assert remote != remote_base  # the adapter changed the scores
    assert chat.choices[0].message.content is not None


def replace_key(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, openai_api_key=KEY)


def test_unknown_adapters_fail_at_start(
    tiny_model_dir: Path, fp32: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_helpers import run

    code, _out, err = run(
        ["serve", "--model", str(tiny_model_dir), "--adapter", "nope", "--port", "0"], capsys
    )
    assert code == 3 and "adapter 'nope' not found" in err
    code, _out, err = run(
        ["serve", "--model", str(tiny_model_dir), "--adapter", "../x", "--port", "0"], capsys
    )
    assert code == 2 and "not an adapter name" in err


def test_a_prefix_shared_with_the_last_request_is_not_computed_again(
    local: HFLocalBackend, fp32: Settings
) -> None:
    """Exam questions of one subject share their k-shot exemplars: the second request runs
    only the tokens after what it shares with the first, and its logprobs are unchanged."""
    shots = "".join(f"Question: {n} + {n} = ?\nA. {2 * n}\nB. {n}\nAnswer: A\n\n" for n in range(1, 6))
    texts = [
        shots + "Question: 7 + 7 = ?\nA. 14\nB. 7\nAnswer: A",
        shots + "Question: 9 + 9 = ?\nA. 9\nB. 18\nAnswer: B",
    ]
    seen: list[int] = []

    def count(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen.append(int(ids.shape[-1]))

    hook = local.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        with ladder_serve(fp32, local) as url:
            replies = []
            for text in texts:
                seen.clear()
                replies.append(
                    client(url).completions.create(
                        model="fake", prompt=text, echo=True, logprobs=0, max_tokens=0
                    )
                )
                if text is texts[0]:
                    first_tokens = sum(seen)
            second_tokens = sum(seen)
    finally:
        hook.remove()
    for reply, text in zip(replies, texts, strict=True):
        ids = local.tokenizer(text, add_special_tokens=False)["input_ids"]
        got = reply.choices[0].logprobs.token_logprobs[1:]
        assert (
            max(abs(a - b) for a, b in zip(got, direct_logprobs(local.model, ids), strict=True)) < TOLERANCE
        )
    shots_tokens = len(local.tokenizer(shots, add_special_tokens=False)["input_ids"])
    # Every token but the last runs (the last one's logits would predict what follows the text).
    assert first_tokens == len(local.tokenizer(texts[0], add_special_tokens=False)["input_ids"]) - 1
    assert (
        second_tokens
        <= len(local.tokenizer(texts[1], add_special_tokens=False)["input_ids"]) - shots_tokens + 1
    )

"""score_choices with a shared-prefix KV cache gives the scores of scoring every prompt whole.

The tiny random llama (fp32) runs both paths; the real smollm2-135m pack checks that the
chosen letters of C-Eval-style 5-shot prompts do not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from assistant.backends.hf.local import HFLocalBackend
from assistant.types import Message
from evaluation.suites.exam import ExamRow, ceval_prompt
from tests.conftest import REAL_HOME, TEST_PACK

pytestmark = pytest.mark.numerics

LETTERS = ["A", "B", "C", "D"]
# Over 32 tokens of shared header, like an exam subject's instructions and exemplars.
HEADER = (
    "The following are questions about the cat and the mat. Answer with the letter only.\n"
    "Q: the cat sat on the mat. Where is the cat?\nA. on the mat\nB. in a box\nAnswer: A\n\n"
)
SUFFIXES = ["Q: a\nAnswer:", "Q: the cat\nAnswer:", "Q: is the mat red and the cat big and old?\nAnswer:",
            "Q: 你好，模型\nAnswer:", "Q: on\nAnswer:", "Q: the mat is on the cat and then the end\nAnswer:",
            "Q: to and of in\nAnswer:"]  # fmt: skip


@pytest.fixture(scope="module", params=[256, 12, 0], ids=["packed", "packed-small-rows", "padded"])
def backend(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> HFLocalBackend:
    """Suffixes after a shared prefix packed into rows of up to 256 or 12 tokens (several
    rows per group), or in padded micro-batches (``pack_tokens = 0``)."""
    from assistant.settings import load_settings

    home = tmp_path_factory.mktemp("home")
    settings = load_settings({"home": str(home), "threads": 1, "dtype": "float32", "batch_size": 3})
    backend = HFLocalBackend(tiny_model_dir, settings)
    backend.pack_tokens = request.param
    return backend


@pytest.fixture
def prefix_calls(backend: HFLocalBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Lengths of the prefixes score_choices ran once and reused."""
    calls: list[int] = []
    original = backend._prefix_cache

    def spy(prefix: list[int]) -> Any:
        calls.append(len(prefix))
        return original(prefix)

    monkeypatch.setattr(backend, "_prefix_cache", spy)
    yield calls


def scores_both_ways(
    backend: HFLocalBackend, prompts: list[str], choices: list[str], chat_template: bool = True
) -> tuple[list[list[float]], list[list[float]]]:
    backend.reuse_prefix = False
    try:
        whole = backend.score_choices(prompts, choices, chat_template=chat_template)
    finally:
        backend.reuse_prefix = True
    return backend.score_choices(prompts, choices, chat_template=chat_template), whole


def assert_close(got: list[list[float]], want: list[list[float]]) -> None:
    assert len(got) == len(want)
    for row, expected in zip(got, want, strict=True):
        assert row == pytest.approx(expected, abs=1e-4)


def manual_logprob(backend: HFLocalBackend, prompt: str, continuation: str) -> float:
    """The choice's log-probability from one unpadded forward pass of prompt + choice."""
    rendered = backend.render([Message("user", prompt)])
    prompt_ids = backend.tokenizer(rendered, add_special_tokens=False)["input_ids"]
    choice_ids = backend.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = backend.model(input_ids=torch.tensor([prompt_ids + choice_ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return float(sum(logprobs[len(prompt_ids) - 1 + i, tok] for i, tok in enumerate(choice_ids)))


def test_shared_prefix_with_different_suffix_lengths(
    backend: HFLocalBackend, prefix_calls: list[int]
) -> None:
    prompts = [HEADER + s for s in SUFFIXES]  # 7 prompts, batch_size 3: three suffix batches
    cached, whole = scores_both_ways(backend, prompts, LETTERS)
    header_tokens = len(backend.tokenizer(HEADER, add_special_tokens=False)["input_ids"])
    assert len(prefix_calls) == 1 and prefix_calls[0] >= header_tokens  # the header ran once
    assert_close(cached, whole)
    # Both agree with an unpadded forward pass, so neither is wrong in the same way.
    for index in (0, 2, 3):
        assert cached[index][1] == pytest.approx(manual_logprob(backend, prompts[index], "B"), abs=1e-4)
    assert len({round(row[0], 4) for row in cached}) == len(prompts)  # rows were not mixed up


def test_raw_prompts_share_their_prefix_too(backend: HFLocalBackend, prefix_calls: list[int]) -> None:
    prompts = [HEADER + s for s in SUFFIXES]
    cached, whole = scores_both_ways(backend, prompts, LETTERS, chat_template=False)
    assert len(prefix_calls) == 1
    assert_close(cached, whole)
    templated = backend.score_choices(prompts[:1], LETTERS)
    assert templated[0] != pytest.approx(cached[0], abs=1e-3)  # raw really is another input


def test_no_common_prefix_scores_every_prompt_whole(backend: HFLocalBackend, prefix_calls: list[int]) -> None:
    prompts = ["hello there", "你好，模型", "the cat sat on the mat and then", "a", "x y z"]
    cached, whole = scores_both_ways(backend, prompts, LETTERS, chat_template=False)
    assert prefix_calls == []  # raw prompts with nothing in common
    assert_close(cached, whole)


def test_two_families_and_strays_in_one_call(backend: HFLocalBackend, prefix_calls: list[int]) -> None:
    other_header = "以下是中国关于猫和垫子考试的单项选择题，请选出其中的正确答案。\n\n"
    prompts = []
    for i, suffix in enumerate(SUFFIXES[:5]):
        prompts += [HEADER + suffix, other_header + suffix, f"stray question {i}"]
    cached, whole = scores_both_ways(backend, prompts, LETTERS)
    # one prefix per family, and one for the strays: the chat template's header (19 tokens)
    assert (
        sorted(prefix_calls)[0] < len(backend.tokenizer(other_header)["input_ids"]) and len(prefix_calls) == 3
    )
    assert_close(cached, whole)


def test_multi_token_choices_with_a_shared_prefix(backend: HFLocalBackend, prefix_calls: list[int]) -> None:
    prompts = [HEADER + s for s in SUFFIXES[:4]]
    choices = [" the mat", " a", "模型很好"]
    cached, whole = scores_both_ways(backend, prompts, choices)
    assert prefix_calls
    assert_close(cached, whole)
    assert cached[1][2] == pytest.approx(manual_logprob(backend, prompts[1], "模型很好"), abs=1e-4)


def test_identical_prompts_keep_a_token_of_their_own(
    backend: HFLocalBackend, prefix_calls: list[int]
) -> None:
    prompts = [HEADER + SUFFIXES[1]] * 4 + [HEADER]
    cached, whole = scores_both_ways(backend, prompts, LETTERS)
    assert prefix_calls
    assert_close(cached, whole)
    assert cached[0] == pytest.approx(cached[3], abs=1e-5)


def test_prefix_groups_split_where_sharing_stops_paying(backend: HFLocalBackend) -> None:
    family_a = [[1] * 100 + [2, i] for i in range(5)]
    family_b = [[1] * 40 + [3] * 60 + [i] for i in range(4)]
    groups = backend._prefix_groups([*family_a, *family_b, [9, 9]], keep=1)
    by_size = sorted((len(members), length) for length, members in groups)
    # B shares 100 tokens within itself but only 40 with A: two groups, not one of 40.
    assert by_size == [(1, 0), (4, 100), (5, 101)]


def test_micro_batches_hold_rows_of_similar_length(backend: HFLocalBackend) -> None:
    lengths = [300, 10, 100, 20, 10, 100, 20, 10, 20, 12, 14]
    # batch_size is 3: rows of one length together, and the 300 alone.
    assert backend._micro_batches(list(range(9)), lengths) == [[1, 4, 7], [3, 6, 8], [2, 5], [0]]
    # A few tokens of padding cost less than one more forward pass; 90 tokens do not.
    assert backend._micro_batches([1, 9, 10], lengths) == [[1, 9, 10]]
    assert backend._micro_batches([1, 4, 2], lengths) == [[1, 4], [2]]


# ---- the real test pack -------------------------------------------------------------------
def _exam_row(index: int, question: str, choices: list[str], answer: str) -> ExamRow:
    return ExamRow(
        str(index), question, choices, answer, None, index + 2, Path("mini_val.csv"), "college_physics"
    )


SHOTS = [
    _exam_row(
        0, "光在真空中的传播速度约为多少？", ["3×10^8 m/s", "3×10^5 m/s", "340 m/s", "1×10^8 m/s"], "A"
    ),
    _exam_row(1, "牛顿第二定律的表达式是：", ["E=mc^2", "F=ma", "P=UI", "V=IR"], "B"),
    _exam_row(2, "下列哪个是矢量？", ["质量", "时间", "温度", "速度"], "D"),
    _exam_row(3, "电阻的国际单位是：", ["伏特", "安培", "欧姆", "瓦特"], "C"),
    _exam_row(4, "自由落体运动的加速度约为：", ["9.8 m/s^2", "1 m/s^2", "98 m/s^2", "0.98 m/s^2"], "A"),
]
QUESTIONS = [
    _exam_row(10, "声音在空气中的传播速度约为：", ["34 m/s", "340 m/s", "3400 m/s", "3×10^8 m/s"], "B"),
    _exam_row(11, "功的国际单位是：", ["牛顿", "焦耳", "帕斯卡", "赫兹"], "B"),
    _exam_row(12, "What is 2 + 2?", ["3", "5", "4", "22"], "C"),
    _exam_row(13, "动能的表达式是：", ["mgh", "1/2 mv^2", "mv", "Fs"], "B"),
    _exam_row(14, "Which of these is a unit of electric current?", ["volt", "ohm", "watt", "ampere"], "D"),
    _exam_row(15, "一个物体静止在水平桌面上，它受到的合力为：", ["零", "重力", "支持力", "摩擦力"], "A"),
]


@pytest.fixture(scope="module")
def smol() -> HFLocalBackend:
    from assistant.settings import load_settings

    folder = REAL_HOME / "models" / TEST_PACK
    if not (folder / "config.json").exists():
        pytest.skip(f"{TEST_PACK} is not installed under {REAL_HOME}")
    return HFLocalBackend(
        folder, load_settings({"home": str(REAL_HOME), "batch_size": 4, "dtype": "float32"})
    )


@pytest.mark.slow
def test_real_pack_5_shot_letters_unchanged(smol: HFLocalBackend, prefix_calls_smol: list[int]) -> None:
    prompts = [ceval_prompt("college_physics", row, SHOTS) for row in QUESTIONS]
    cached, whole = scores_both_ways(smol, prompts, LETTERS)
    assert prefix_calls_smol and prefix_calls_smol[0] > 200  # header + 5 exemplars ran once
    argmax = [max(range(4), key=row.__getitem__) for row in cached]
    assert argmax == [max(range(4), key=row.__getitem__) for row in whole]
    assert_close(cached, whole)


@pytest.fixture
def prefix_calls_smol(smol: HFLocalBackend, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = smol._prefix_cache

    def spy(prefix: list[int]) -> Any:
        calls.append(len(prefix))
        return original(prefix)

    monkeypatch.setattr(smol, "_prefix_cache", spy)
    return calls

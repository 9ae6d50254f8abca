"""The llama_cpp backend (``gguf:<file>``) on the test pack, checked against ``hf_local``.

The GGUF is the test pack converted to f16 (``tests.helpers.gguf_pack``), so both backends run
the same weights: the same prompt token ids, the same greedy reply, and exam scores equal up to
f16 rounding, with the same choice picked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import CapabilityError, ModelNotFoundError
from assistant.types import GenParams, Message
from tests.conftest import REAL_HOME
from tests.helpers.gguf_pack import built_gguf, require_engine, seed_converter_sdist

_BACKENDS: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_backends() -> Any:
    yield
    gguf = _BACKENDS.pop("gguf", None)
    if gguf is not None:
        gguf.close()  # before interpreter exit, when llama.cpp's finalizers can no longer run
    _BACKENDS.clear()


EXAM = [
    "Question: What is the capital of France?\nA. Berlin\nB. Paris\nC. Madrid\nD. Rome\nAnswer:",
    "Question: How many legs does a spider have?\nA. Six\nB. Eight\nC. Ten\nD. Four\nAnswer:",
    "Question: Which gas do plants take in from the air?\nA. Oxygen\nB. Helium\nC. Carbon dioxide\n"
    "D. Neon\nAnswer:",
    "Question: What is 2 + 2?\nA. 3\nB. 5\nC. 4\nD. 22\nAnswer:",
    "The sun rises in the",
    "Water freezes at zero degrees",
]
LETTERS = [" A", " B", " C", " D"]
WORDS = [" east", " west", " Celsius", " Fahrenheit and nothing else"]


def test_a_missing_engine_is_a_capability_error_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.backends.llama_cpp import LlamaCppBackend, engine_missing

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now fails
    assert "make engines" in (engine_missing() or "")
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(CapabilityError, match="not installed") as caught:
        LlamaCppBackend(path)
    assert caught.value.exit_code == 6 and "make engines" in str(caught.value.hint)


def test_a_file_the_engine_cannot_load_is_exit_3(tmp_path: Path) -> None:
    require_engine()
    from assistant.backends.load import load_backend
    from assistant.settings import load_settings

    path = tmp_path / "truncated.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelNotFoundError, match="could not load") as caught:
        load_backend(f"gguf:{path}", load_settings())
    assert caught.value.exit_code == 3


@pytest.fixture
def gguf_f16(isolated_home: Path, real_pack_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_engine()
    seed_converter_sdist(REAL_HOME, isolated_home)
    return built_gguf("f16", real_pack_dir, tmp_path_factory.getbasetemp() / "gguf-builds")


@pytest.fixture
def backend(gguf_f16: Path) -> Any:
    if "gguf" not in _BACKENDS:
        from assistant.backends.load import load_backend
        from assistant.settings import load_settings

        _BACKENDS["gguf"] = load_backend(f"gguf:{gguf_f16}", load_settings({"threads": 2}))
    return _BACKENDS["gguf"]


@pytest.fixture
def hf(real_pack_dir: Path) -> Any:
    if "hf" not in _BACKENDS:
        from assistant.backends.hf.local import HFLocalBackend
        from assistant.settings import load_settings

        _BACKENDS["hf"] = HFLocalBackend(
            real_pack_dir, load_settings({"threads": 2, "dtype": "float32", "batch_size": 4})
        )
    return _BACKENDS["hf"]


pytestmark = pytest.mark.slow


def test_loads_through_a_gguf_reference_with_the_files_context(backend: Any, gguf_f16: Path) -> None:
    from assistant.backends.llama_cpp import MAX_CONTEXT, LlamaCppBackend

    assert isinstance(backend, LlamaCppBackend)
    assert backend.model_id == f"gguf:{gguf_f16}"
    assert backend.context_window == min(8192, MAX_CONTEXT)  # smollm2-135m was trained on 8192


def test_prompts_are_the_same_token_ids_as_hf_local(backend: Any, hf: Any) -> None:
    conversation = [Message("system", "Be brief."), Message("user", "Name a colour. 你好")]
    text = backend.render(conversation)
    assert text == hf.render(conversation)
    assert backend.tokenize(text) == hf.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_greedy_generation_matches_hf_local_and_counts_tokens(backend: Any, hf: Any) -> None:
    conversation = [Message("user", "Write one sentence about the sea.")]
    params = GenParams(max_new_tokens=12)
    (ours,) = backend.generate([conversation], params)
    (theirs,) = hf.generate([conversation], params)
    assert ours.text and ours.finish_reason == "length"
    assert ours.usage.prompt_tokens == theirs.usage.prompt_tokens
    assert ours.usage.completion_tokens == 12
    # f16 against float32 may part ways late in a reply; the first words agree
    assert ours.text.split()[:3] == theirs.text.split()[:3]


def test_stop_sequences_cut_the_reply(backend: Any) -> None:
    conversation = [Message("user", "Count from one to ten in words, separated by commas.")]
    (free,) = backend.generate([conversation], GenParams(max_new_tokens=30))
    assert len(free.text) >= 8, free.text
    stop = free.text[len(free.text) // 2 :][:2]
    (cut,) = backend.generate([conversation], GenParams(max_new_tokens=30, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text == free.text[: free.text.index(stop)].strip()
    assert len(cut.text) < len(free.text)


def test_a_single_conversation_streams_the_reply(backend: Any) -> None:
    from assistant.backends.streaming import stream_to

    deltas: list[str] = []
    with stream_to(deltas.append):
        (reply,) = backend.generate([[Message("user", "Say hello.")]], GenParams(max_new_tokens=10))
    assert len(deltas) > 1
    assert "".join(deltas) == reply.text


def test_a_json_schema_constrains_the_reply(backend: Any) -> None:
    from assistant.backends.json_schema import respond_with_schema

    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["answer"],
    }
    with respond_with_schema(schema):
        (reply,) = backend.generate([[Message("user", "Is the sky blue?")]], GenParams(max_new_tokens=20))
    assert json.loads(reply.text)["answer"] in ("yes", "no")


@pytest.mark.parametrize("chat_template", [False, True])
def test_score_choices_agree_with_hf_local(backend: Any, hf: Any, chat_template: bool) -> None:
    for choices in (LETTERS, WORDS):
        ours = backend.score_choices(EXAM, choices, chat_template=chat_template)
        theirs = hf.score_choices(EXAM, choices, chat_template=chat_template)
        for row, reference in zip(ours, theirs, strict=True):
            assert row == pytest.approx(reference, abs=0.08 * max(1, len(choices[-1].split())))
            top = sorted(reference, reverse=True)
            if top[0] - top[1] > 0.1:  # a close call may flip under f16 rounding; a clear one may not
                assert row.index(max(row)) == reference.index(max(reference))


def test_score_choices_reuses_the_cache_without_changing_scores(backend: Any) -> None:
    prompts = ["Shared header. " * 8 + tail for tail in ("Pick A.", "Pick B.", "Pick C.")]
    together = backend.score_choices(prompts, WORDS, chat_template=False)
    alone = [backend.score_choices([p], WORDS, chat_template=False)[0] for p in reversed(prompts)]
    flat = [score for row in reversed(alone) for score in row]
    # batches of other shapes sum in another order: equal to f16 rounding, not bit for bit
    assert [score for row in together for score in row] == pytest.approx(flat, abs=1e-2)


def test_chat_model_answers_through_the_backend(backend: Any) -> None:
    from langchain_core.messages import HumanMessage

    reply = backend.chat_model().invoke([HumanMessage("Say hi.")], max_tokens=5)
    assert reply.content and reply.response_metadata["model_name"] == backend.model_id


def test_doctor_line_names_the_build_and_flags_an_amx_build(monkeypatch: pytest.MonkeyPatch) -> None:
    require_engine()
    from assistant.backends import llama_cpp as module

    line, problem = module.engine_line()
    assert line.startswith("llama-cpp-python 0.3.36 (") and "AVX2" in line and "AMX" not in line
    assert problem is None
    monkeypatch.setattr(module, "engine_features", lambda: {"AVX2": True, "AMX_INT8": True})
    line, problem = module.engine_line()
    assert "AMX_INT8" in line and problem is not None and "make engines" in problem


def test_doctor_line_without_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.backends.llama_cpp import engine_line

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    line, problem = engine_line()
    assert line.startswith("not installed") and "make engines" in line and problem is None

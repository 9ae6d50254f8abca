"""GGUF formats: the test pack converted and quantized by llama.cpp, and the crash guard.

The crash guard runs a quantized model (Q4_K_M and Q8_0) on a multi-token prompt (evaluated in
one batch of many tokens) in a child process, on the engine build that is installed: a build
whose kernels crash on this CPU (llama.cpp built with native flags segfaulted on every quantized
model on an AVX-512 + AMX CPU) fails here with a clear message instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.errors import CapabilityError
from assistant.progress import RecordingProgress
from tests.conftest import REAL_HOME
from tests.helpers.gguf_pack import build_once, built_gguf, require_engine, seed_converter_sdist

pytestmark = pytest.mark.slow


@pytest.fixture
def gguf_root(isolated_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_engine()
    seed_converter_sdist(REAL_HOME, isolated_home)
    return tmp_path_factory.getbasetemp() / "gguf-builds"


def _tensor_types(path: Path) -> dict[str, int]:
    from finetune.deploy.gguf import tensor_types

    return dict(tensor_types(path))


def test_q8_0_is_converted_and_quantized(real_pack_dir: Path, gguf_root: Path) -> None:
    path = built_gguf("q8_0", real_pack_dir, gguf_root)
    assert path.name == "model-q8_0.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    types = _tensor_types(path)
    # every matrix in 8-bit blocks, norms in f32; no temporary file is left beside it
    assert types.get("Q8_0", 0) > 100 and set(types) <= {"Q8_0", "F32"}, types
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    f16 = built_gguf("f16", real_pack_dir, gguf_root)
    assert 0.45 < path.stat().st_size / f16.stat().st_size < 0.6


def test_q4_k_m_reports_the_q5_0_fallback(real_pack_dir: Path, gguf_root: Path) -> None:
    built = build_once("q4_k_m", real_pack_dir, gguf_root)
    (path,) = built.files
    assert built.model_ref == f"gguf:{path.resolve()}"
    types = _tensor_types(path)
    assert types.get("Q4_K", 0) > 0, types
    # smollm2-135m's 576-wide rows are not a multiple of 256: those matrices fall back
    fell_back = sum(n for name, n in types.items() if name in ("Q5_0", "Q5_1", "Q8_0", "Q4_0", "Q4_1"))
    assert fell_back > 0
    (note,) = built.notes
    assert f"{fell_back} of {sum(types.values())} tensors fell back" in note and "576" in note


def test_a_failed_conversion_leaves_nothing(tmp_path: Path, gguf_root: Path) -> None:
    from assistant.settings import load_settings
    from finetune.deploy.gguf import build_q8_0

    settings = load_settings()
    source = tmp_path / "broken"
    source.mkdir()
    (source / "config.json").write_text('{"architectures": ["NoSuchModelForCausalLM"]}')
    out = tmp_path / "out"
    progress = RecordingProgress()
    with pytest.raises(CapabilityError, match="converting"):
        build_q8_0(source, out, progress, settings)
    assert list(out.iterdir()) == []
    assert ("note", "converting broken to GGUF f16") in progress.events


_GUARD = textwrap.dedent(
    """
    import sys
    from assistant.backends.llama_cpp import LlamaCppBackend
    from assistant.settings import load_settings
    from assistant.types import GenParams, Message

    backend = LlamaCppBackend(sys.argv[1], load_settings({"threads": 2}))
    prompt = "Question: which planet is known as the red planet? " * 6 + "Answer:"
    assert len(backend.tokenize(prompt)) > 32
    scores = backend.score_choices([prompt], [" Mars", " Venus", " Jupiter and Saturn"], chat_template=False)
    (reply,) = backend.generate([[Message("user", prompt)]], GenParams(max_new_tokens=8))
    print("OK", scores, repr(reply.text))
    """
)


@pytest.mark.parametrize("kind", ["q4_k_m", "q8_0"])
def test_crash_guard_quantized_model_evaluates_a_multi_token_prompt(
    kind: str, real_pack_dir: Path, gguf_root: Path
) -> None:
    path = built_gguf(kind, real_pack_dir, gguf_root)
    result = subprocess.run(
        [sys.executable, "-c", _GUARD, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        died = (
            f"killed by signal {-result.returncode}" if result.returncode < 0 else f"exit {result.returncode}"
        )
        pytest.fail(
            f"the installed llama.cpp build crashed ({died}) evaluating a multi-token prompt on a "
            f"{kind.upper()} model: its kernels are unsafe on this CPU; rebuild with `make engines` "
            f"(portable flags). stderr: {result.stderr[-800:]}"
        )
    assert result.stdout.startswith("OK [[")


def test_a_tampered_converter_sdist_is_refused(isolated_home: Path) -> None:
    from assistant.errors import PackError
    from assistant.progress import NullProgress
    from assistant.settings import load_settings
    from finetune.deploy.gguf import SDIST_NAME, converter_dir

    settings = load_settings()
    settings.wheel_cache_dir.mkdir(parents=True)
    (settings.wheel_cache_dir / SDIST_NAME).write_bytes(b"not the pinned sdist")
    with pytest.raises(PackError, match="SHA-256 mismatch"):
        converter_dir(settings, NullProgress())
    assert not (settings.home / "cache" / "llama.cpp-0.3.36-converter").exists()


def test_the_builders_read_the_converter_from_the_home_they_are_given(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """``ladder deploy --home X`` builds with X's cache: a builder takes the caller's settings
    instead of loading its own (a tampered sdist in X is found, so X is the one read)."""
    from assistant.errors import PackError
    from assistant.progress import NullProgress
    from assistant.settings import load_settings
    from finetune.deploy.gguf import SDIST_NAME, build_f16

    other = load_settings({"home": tmp_path / "other-home"})
    other.wheel_cache_dir.mkdir(parents=True)
    (other.wheel_cache_dir / SDIST_NAME).write_bytes(b"not the pinned sdist")
    with pytest.raises(PackError, match="SHA-256 mismatch"):
        build_f16(tiny_model_dir, tmp_path / "out", NullProgress(), other)

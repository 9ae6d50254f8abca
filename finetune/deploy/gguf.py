"""The llama.cpp formats: a merged transformers folder to GGUF, then quantized (Q8_0, Q4_K_M).

Two steps, each in a child process so that a crash of the engine (a segfault in C) is a
one-line error here, not the end of ``ladder deploy``:

1. **Convert** the float32 folder to an f16 GGUF with llama.cpp's own ``convert_hf_to_gguf.py``
   and the ``gguf-py`` beside it. Neither ships in the ``llama-cpp-python`` wheel, so they come
   from its source distribution, the same pinned release the engine is built from
   (``make engines``): the sdist is looked up in ``settings.wheel_cache_dir`` (where
   ``make engines`` leaves it), else fetched there with ``pip download``, its SHA-256 checked,
   and only the converter's files extracted, once, under ``LADDER_HOME/cache``.
2. **Quantize** with the engine's ``llama_model_quantize``. Q4_K_M stores most matrices in
   4-bit K-blocks of 256 values; a tensor whose rows are not a multiple of 256 (896 columns in
   qwen2.5-0.5b) falls back to q5_0. ``Built.notes`` counts those, read back from the file.

Everything is written under temporary names in ``out`` and renamed at the end, so a failure
halfway leaves no ``.gguf`` behind; the caller publishes ``out`` atomically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from assistant.backends.llama_cpp import ENGINE_HINT, LLAMA_CPP_VERSION, engine_missing
from assistant.errors import CapabilityError, PackError
from assistant.models.pull import _pip_args  # the pip settings model packs are pulled with
from assistant.progress import Progress
from assistant.settings import Settings
from assistant.storage import sha256_file
from finetune.deploy.formats import Built

__all__ = ["build_f16", "build_q4_k_m", "build_q8_0", "converter_dir", "engine_missing"]

SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
_VENDOR = f"llama_cpp_python-{LLAMA_CPP_VERSION}/vendor/llama.cpp/"
# What the converter needs of the llama.cpp tree: the script, its model classes, its gguf-py.
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
# llama.cpp's file types (enum llama_ftype in llama.h).
FTYPES = {"q8_0": 7, "q4_k_m": 15}
_K_BLOCK = 256
_TAIL = 600  # characters of a child's stderr quoted in an error


# ---- the converter, from the pinned sdist ------------------------------------------------------
def _sdist(settings: Settings, progress: Progress) -> Path:
    """The pinned llama-cpp-python sdist in the wheel cache, downloaded there if missing."""
    cache = settings.wheel_cache_dir
    path = cache / SDIST_NAME
    if not path.is_file():
        progress.note(f"downloading the llama.cpp converter ({SDIST_NAME})")
        cache.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "--no-build-isolation",
            "--disable-pip-version-check", "--quiet", "--dest", str(cache), *_pip_args(settings),
            f"llama-cpp-python=={LLAMA_CPP_VERSION}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if not path.is_file():
            raise PackError(
                f"could not download {SDIST_NAME} (the llama.cpp converter): "
                f"{(result.stderr or result.stdout).strip()[-_TAIL:]}",
                hint=f"run `make engines` (it leaves the file in {cache}), or put it there by hand",
            )
    digest = sha256_file(path)
    if digest != SDIST_SHA256:
        raise PackError(
            f"SHA-256 mismatch for {path}: expected {SDIST_SHA256}, got {digest}",
            hint="delete the file and run the command again",
        )
    return path


def converter_dir(settings: Settings, progress: Progress) -> Path:
    """A folder with ``convert_hf_to_gguf.py``, ``conversion/`` and ``gguf-py/`` of the pinned
    llama.cpp, extracted once under ``LADDER_HOME/cache`` (atomically: a rename at the end)."""
    target = settings.home / "cache" / f"llama.cpp-{LLAMA_CPP_VERSION}-converter"
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    sdist = _sdist(settings, progress)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converter-", dir=target.parent))
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            members = []
            for member in archive.getmembers():
                inner = member.name[len(_VENDOR) :] if member.name.startswith(_VENDOR) else None
                if inner and (member.isfile() or member.isdir()) and inner.startswith(_CONVERTER_PARTS):
                    member.name = inner
                    members.append(member)
            archive.extractall(staging, members=members, filter="data")
        if not (staging / "convert_hf_to_gguf.py").is_file():
            raise PackError(f"{sdist} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
        try:
            staging.rename(target)
        except OSError:  # another process extracted it first
            if not (target / "convert_hf_to_gguf.py").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# ---- the two steps, each in a child process --------------------------------------------------
def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TRANSFORMERS_OFFLINE="1")
    return env


def _run(command: list[str], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, env=_child_env())
    if result.returncode != 0:
        died = f" (killed by signal {-result.returncode})" if result.returncode < 0 else ""
        tail = (result.stderr or result.stdout).strip()[-_TAIL:].replace("\n", " | ")
        raise CapabilityError(f"{what} failed{died}: {tail}", hint="see `ladder doctor`; " + ENGINE_HINT)
    return result


def convert_to_f16(source: Path, target: Path, settings: Settings, progress: Progress) -> None:
    """``source`` (a transformers folder) as an f16 GGUF at ``target``."""
    script = converter_dir(settings, progress) / "convert_hf_to_gguf.py"
    progress.note(f"converting {source.name} to GGUF f16")
    command = [sys.executable, str(script), str(source), "--outfile", str(target), "--outtype", "f16"]
    _run(command, f"converting {source} to GGUF", cwd=script.parent)
    if not target.is_file():
        raise CapabilityError(f"the GGUF converter wrote no file for {source}")


def quantize(source: Path, target: Path, kind: str, threads: int) -> None:
    """``source`` (a GGUF) quantized to ``kind`` (a key of ``FTYPES``) at ``target``."""
    command = [sys.executable, "-m", "finetune.deploy.gguf", "quantize",
               str(source), str(target), str(FTYPES[kind]), str(threads)]  # fmt: skip
    _run(command, f"quantizing {source.name} to {kind.upper()}")
    if not target.is_file():
        raise CapabilityError(f"llama.cpp wrote no {kind.upper()} file for {source.name}")


def _quantize_here(source: str, target: str, ftype: int, threads: int) -> int:
    """The child's side of ``quantize``: llama.cpp's own quantizer."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    return int(llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)))


# ---- what a file holds -------------------------------------------------------------------------
def tensor_types(path: Path) -> Counter[str]:
    """How many tensors of each type (``Q4_K``, ``Q5_0``, ``F32``...) a GGUF holds."""
    from gguf import GGUFReader

    return Counter(t.tensor_type.name for t in GGUFReader(path).tensors)


def fallback_note(path: Path, kind: str) -> str | None:
    """For a K-quant file: how many matrices fell back to another type because their rows are
    not a multiple of 256 (``None`` when none did)."""
    from gguf import GGUFReader

    if not kind.startswith("q") or "_k" not in kind:
        return None
    tensors = GGUFReader(path).tensors
    fell: Counter[str] = Counter()
    widths: set[int] = set()
    for tensor in tensors:
        name = tensor.tensor_type.name
        if name in ("F32", "F16", "BF16") or name.endswith("_K"):
            continue
        if int(tensor.shape[0]) % _K_BLOCK:
            fell[name] += 1
            widths.add(int(tensor.shape[0]))
    if not fell:
        return None
    kinds = ", ".join(f"{count} to {name.lower()}" for name, count in fell.most_common())
    cols = ", ".join(str(w) for w in sorted(widths))
    return (
        f"{kind.upper()}: {sum(fell.values())} of {len(tensors)} tensors fell back ({kinds}): "
        f"their rows ({cols} values) are not a multiple of {_K_BLOCK}"
    )


# ---- the builders (``finetune.deploy.formats.Builder``) ----------------------------------------
def _require_engine() -> None:
    hint = engine_missing()
    if hint is not None:
        raise CapabilityError("the llama.cpp engine (llama-cpp-python) is not installed", hint=hint)


def _temp(out: Path, name: str) -> Path:
    return out / f".{name}.partial"


def build_f16(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """The merged folder as an f16 GGUF (the quantizers' input; served as is, too)."""
    out.mkdir(parents=True, exist_ok=True)
    final = out / "model-f16.gguf"
    partial = _temp(out, final.name)
    try:
        convert_to_f16(source, partial, settings, progress)
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    return Built(model_ref=f"gguf:{final.resolve()}", files=(final,))


def _build_quantized(kind: str, source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    _require_engine()
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"model-{kind}.gguf"
    f16, partial = _temp(out, "model-f16.gguf"), _temp(out, final.name)
    try:
        convert_to_f16(source, f16, settings, progress)
        progress.note(f"quantizing to {kind.upper()}")
        quantize(f16, partial, kind, settings.threads)
        note = fallback_note(partial, kind)
        partial.rename(final)
    finally:
        f16.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return Built(model_ref=f"gguf:{final.resolve()}", files=(final,), notes=(note,) if note else ())


def build_q8_0(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """GGUF Q8_0: 8-bit blocks of 32 values (about 1.06 bytes a weight)."""
    return _build_quantized("q8_0", source, out, progress, settings)


def build_q4_k_m(source: Path, out: Path, progress: Progress, settings: Settings) -> Built:
    """GGUF Q4_K_M: 4-bit K-blocks, a few tensors in 6-bit (about 0.6 bytes a weight)."""
    return _build_quantized("q4_k_m", source, out, progress, settings)


def _main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "quantize":
        code = _quantize_here(argv[1], argv[2], int(argv[3]), int(argv[4]))
        if code != 0:
            print(f"llama_model_quantize returned {code}", file=sys.stderr)
        return 1 if code else 0
    print("usage: python -m finetune.deploy.gguf quantize SOURCE TARGET FTYPE THREADS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

"""Single-stream decode speed of the GGUF formats (llama.cpp) against transformers.

    .venv/bin/python benchmarks/gguf_speed.py [--model qwen2.5-coder-0.5b] [--tokens 64] [--rounds 3]

Builds the pack's f16, Q8_0 and Q4_K_M GGUFs once (``finetune.deploy.gguf``; kept under
``LADDER_HOME/cache/bench-gguf``, with the conversion and quantization times), then measures, in
rounds that interleave the formats, one greedy stream of ``--tokens`` new tokens from each of:
llama.cpp Q4_K_M, Q8_0 and f16, and transformers (``hf_local``) float32 and bfloat16. Decode
tokens/s is the new tokens after the first over the time after the first (the prompt's prefill
excluded), the median over the rounds. It prints the load average next to the table (the
machine is shared), the file sizes, and the memory-bandwidth bound (bytes of weights read per
token against a measured copy bandwidth), and the ratio of each to transformers float32.
Needs the engine: ``make engines``. (Not named ``gguf.py``: it would shadow the ``gguf``
package for any tool that puts this folder on ``sys.path``.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, this folder is first on sys.path, where finetune.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import assistant  # noqa: F401, E402  (offline env first)
from assistant.models.pull import ensure_pack  # noqa: E402
from assistant.progress import NullProgress  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

PROMPT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def copy_bandwidth_gbs(size_mb: int = 512, rounds: int = 3) -> float:
    """Memory bandwidth, GB/s, of a large numpy copy (read + write), best of ``rounds``."""
    import numpy as np

    source = np.ones(size_mb * (1 << 20) // 8)
    target = np.empty_like(source)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        np.copyto(target, source)
        best = max(best, 2 * source.nbytes / (time.perf_counter() - start) / 1e9)
    return best


def build_ggufs(pack_dir: Path, root: Path) -> dict[str, tuple[Path, float]]:
    """f16, q8_0 and q4_k_m files of the pack with the seconds each took (0 when cached)."""
    from finetune.deploy import gguf

    settings = load_settings()
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, float]] = {}
    f16 = root / "model-f16.gguf"
    start = time.perf_counter()
    if not f16.is_file():
        partial = root / ".model-f16.partial"
        gguf.convert_to_f16(pack_dir, partial, settings, NullProgress())
        partial.rename(f16)
    out["f16"] = (f16, time.perf_counter() - start)
    for kind in ("q8_0", "q4_k_m"):
        target = root / f"model-{kind}.gguf"
        start = time.perf_counter()
        if not target.is_file():
            partial = root / f".model-{kind}.partial"
            gguf.quantize(f16, partial, kind, settings.threads)
            note = gguf.fallback_note(partial, kind)
            if note:
                print(note)
            partial.rename(target)
        out[kind] = (target, time.perf_counter() - start)
    return out


def gguf_stream(path: Path, threads: int) -> Callable[[int], list[float]]:
    from assistant.backends.llama_cpp import LlamaCppBackend

    backend = LlamaCppBackend(path, load_settings({"threads": threads}))

    def run(tokens: int) -> list[float]:
        stamps = []
        backend.llm.reset()  # no prefix reuse between rounds: every stream starts cold
        for _ in backend.stream_tokens(PROMPT, tokens):
            stamps.append(time.perf_counter())
        return stamps

    return run


def hf_stream(pack_dir: Path, dtype: str, threads: int) -> Callable[[int], list[float]]:
    import torch
    from transformers.generation.streamers import BaseStreamer

    from assistant.backends.hf.local import HFLocalBackend

    backend = HFLocalBackend(pack_dir, load_settings({"threads": threads, "dtype": dtype}))
    ids = backend.tokenizer(PROMPT, return_tensors="pt")["input_ids"]

    class Stamps(BaseStreamer):
        def __init__(self) -> None:
            self.stamps: list[float] = []
            self.prompt_seen = False

        def put(self, value: object) -> None:
            if self.prompt_seen:
                self.stamps.append(time.perf_counter())
            self.prompt_seen = True

        def end(self) -> None:
            pass

    def run(tokens: int) -> list[float]:
        streamer = Stamps()
        with torch.inference_mode():
            backend.model.generate(
                input_ids=ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                streamer=streamer, pad_token_id=backend.tokenizer.eos_token_id,
                temperature=None, top_p=None, top_k=None,
            )  # fmt: skip
        return streamer.stamps

    return run


def decode_rate(stamps: list[float]) -> float:
    """Tokens per second after the first token (prefill excluded)."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--formats", default="gguf-q4_k_m,gguf-q8_0,gguf-f16,hf-float32,hf-bfloat16")
    args = parser.parse_args()

    settings = load_settings()
    pack_dir = ensure_pack(args.model, settings)
    print(f"load average before: {load_average()}  ({os.cpu_count()} cores, {args.threads} threads)")
    files = build_ggufs(pack_dir, settings.home / "cache" / "bench-gguf" / args.model)
    for path, seconds in files.values():
        made = f"built in {seconds:.1f} s" if seconds > 0.5 else "cached"
        print(f"  {path.name}: {path.stat().st_size / 1e6:.0f} MB ({made})")
    weights = {f"gguf-{kind}": path.stat().st_size for kind, (path, _) in files.items()}
    weights["hf-float32"] = sum(p.stat().st_size for p in pack_dir.glob("*.safetensors"))
    weights["hf-bfloat16"] = weights["hf-float32"] // 2

    runners: dict[str, Callable[[int], list[float]]] = {}
    for name in args.formats.split(","):
        engine, _, variant = name.partition("-")
        if engine == "gguf":
            runners[name] = gguf_stream(files[variant][0], args.threads)
        else:
            runners[name] = hf_stream(pack_dir, variant, args.threads)
        runners[name](4)  # warm-up

    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            rates[name].append(decode_rate(run(args.tokens)))
    bandwidth = copy_bandwidth_gbs()
    print(f"load average after: {load_average()}; copy bandwidth {bandwidth:.1f} GB/s")
    base = statistics.median(rates["hf-float32"]) if "hf-float32" in rates else None
    print(f"\n| format | decode tok/s (median of {args.rounds}) | x fp32 | weights MB | bound tok/s |")
    print("|---|---|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        ratio = f"{median / base:.2f}" if base else "-"
        bound = bandwidth * 1e9 / weights[name]
        print(f"| {name} | {median:.1f} | {ratio} | {weights[name] / 1e6:.0f} | {bound:.0f} |")


if __name__ == "__main__":
    main()

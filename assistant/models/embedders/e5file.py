"""Reader of the E5S1 file: a 4-bit multilingual-e5 encoder with its tokenizer, in one file.

The layout follows ``e5_parse`` in the carrier's ``e5.c`` (the reference reader), all
little-endian::

    "E5S1", u32 version; i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 bloblen;
               (n_pieces + 1) u32 byte offsets; n_pieces f32 scores; blob (UTF-8 pieces)
    normalizer: i32 n_norm; u32 nm_bytes; n_norm x (u32 cp, u8 nout, nout x u32 cp)
    tensors: i32 ndir; ndir x (u16 namelen, name, u8 dtype, u32 n, u64 offset, u64 nbytes)

dtype 0 is float32, 1 is Q4_0 (per 32 weights: a float16 scale ``d`` and 16 bytes; byte j
holds weight j in its low nibble and weight j + 16 in its high nibble; value ``(q - 8) * d``).
Every read is bounds-checked, so a truncated or foreign file is a ``PackError``, never a
numpy traceback.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.errors import PackError

if TYPE_CHECKING:
    import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
F32, Q4_0 = 0, 1


@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int  # H
    layers: int  # NL
    heads: int  # NH
    ffn: int  # FF
    vocab: int  # VOC: rows of the word-embedding matrix (>= n_pieces)
    max_positions: int  # MAXP
    type_vocab: int  # TVS
    eps: float
    qk: int


@dataclass(frozen=True)
class E5Vocab:
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    # codepoint -> replacement codepoints (empty tuple: the codepoint is deleted)
    normalization: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int  # number of values
    offset: int
    nbytes: int


class _Cursor:
    def __init__(self, data: memoryview, origin: str) -> None:
        self.data, self.pos, self.origin = data, 0, origin

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise PackError(
                f"{self.origin} is truncated or corrupt: {what} needs {n} bytes at offset {self.pos}, "
                f"the file has {len(self.data)}"
            )
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def i32(self, what: str) -> int:
        return int(self.unpack("i", what)[0])


class E5File:
    """A parsed E5S1 file held in memory (``data``: the whole file as bytes)."""

    def __init__(self, data: bytes, origin: str = "E5S1 file") -> None:
        import numpy as np

        self.origin = origin
        self._data = memoryview(data)
        if len(data) < 8 and MAGIC.startswith(bytes(self._data[:4])):
            raise PackError(f"{origin} is truncated: {len(data)} bytes")
        if bytes(self._data[:4]) != MAGIC:
            raise PackError(f"{origin} is not an E5S1 model file (bad magic {bytes(self._data[:4])!r})")
        cur = _Cursor(self._data, origin)
        cur.take(4, "magic")
        version = int(cur.unpack("I", "version")[0])
        h, nl, nh, ff, voc, maxp, tvs = (int(v) for v in cur.unpack("7i", "header"))
        eps = float(cur.unpack("f", "eps")[0])
        qk = cur.i32("qk")
        self.header = E5Header(version, h, nl, nh, ff, voc, maxp, tvs, eps, qk)
        self._check_header()

        n_pieces, bos, eos, pad, unk = (int(v) for v in cur.unpack("5i", "tokenizer header"))
        if not 0 < n_pieces <= voc or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
            raise PackError(f"{origin}: bad tokenizer header ({n_pieces} pieces, vocabulary {voc})")
        bloblen = int(cur.unpack("Q", "blob length")[0])
        offsets = np.frombuffer(cur.take((n_pieces + 1) * 4, "piece offsets"), dtype="<u4")
        scores = np.frombuffer(cur.take(n_pieces * 4, "piece scores"), dtype="<f4").astype(np.float32)
        blob = bytes(cur.take(bloblen, "piece bytes"))
        if offsets[0] != 0 or offsets[-1] > bloblen or np.any(np.diff(offsets.astype(np.int64)) < 0):
            raise PackError(f"{origin}: corrupt piece offsets")
        try:
            pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        except UnicodeDecodeError as exc:
            raise PackError(f"{origin}: a tokenizer piece is not UTF-8 ({exc})") from None
        normalization = self._read_normalization(cur)
        self.vocab = E5Vocab(pieces, scores, bos, eos, pad, unk, normalization)
        self.tensors = self._read_directory(cur)

    def _check_header(self) -> None:
        h = self.header
        sane = (
            h.hidden > 0 and h.layers > 0 and h.heads > 0 and h.hidden % h.heads == 0
            and h.hidden % QK == 0 and h.ffn > 0 and h.ffn % QK == 0 and h.vocab > 0
            and h.max_positions > 2 and h.type_vocab > 0 and 0 < h.eps < 1
        )  # fmt: skip
        if not sane:
            raise PackError(f"{self.origin}: implausible model header {h}")

    def _read_normalization(self, cur: _Cursor) -> dict[int, tuple[int, ...]]:
        n_norm = cur.i32("normalization count")
        nm_bytes = int(cur.unpack("I", "normalization size")[0])
        table = _Cursor(cur.take(nm_bytes, "normalization table"), self.origin)
        out: dict[int, tuple[int, ...]] = {}
        for _ in range(max(n_norm, 0)):
            cp = int(table.unpack("I", "normalization entry")[0])
            n_out = int(table.unpack("B", "normalization entry")[0])
            out[cp] = tuple(int(v) for v in table.unpack(f"{n_out}I", "normalization entry"))
        return out

    def _read_directory(self, cur: _Cursor) -> dict[str, TensorEntry]:
        entries: dict[str, TensorEntry] = {}
        for _ in range(max(cur.i32("tensor count"), 0)):
            name_len = int(cur.unpack("H", "tensor name")[0])
            name = bytes(cur.take(name_len, "tensor name")).decode("utf-8", "replace")
            dtype = int(cur.unpack("B", "tensor dtype")[0])
            count, offset, nbytes = (int(v) for v in cur.unpack("IQQ", "tensor entry"))
            expected = count * 4 if dtype == F32 else count // QK * Q4_BLOCK_BYTES
            if dtype not in (F32, Q4_0) or (dtype == Q4_0 and count % QK) or nbytes != expected:
                raise PackError(
                    f"{self.origin}: tensor {name!r} has a bad entry (dtype {dtype}, {count} values)"
                )
            if offset + nbytes > len(self._data):
                raise PackError(
                    f"{self.origin} is truncated: tensor {name!r} ends at byte {offset + nbytes}, "
                    f"the file has {len(self._data)}"
                )
            entries[name] = TensorEntry(name, dtype, count, offset, nbytes)
        return entries

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor ``name`` as float32 of ``shape`` (Q4_0 tensors are dequantised)."""
        import math

        import numpy as np

        entry = self.tensors.get(name)
        if entry is None:
            raise PackError(f"{self.origin}: tensor {name!r} is missing")
        if entry.count != math.prod(shape):
            raise PackError(
                f"{self.origin}: tensor {name!r} has {entry.count} values, expected shape {shape}"
            )
        raw = self._data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == F32:
            return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        return dequantize_q4_0(np.frombuffer(raw, dtype=np.uint8)).reshape(shape)


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (uint8, 18 bytes each) to float32, vectorised: ``(q - 8) * d``."""
    import numpy as np

    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n, 1]
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8  # [n, 32]
    return (q.astype(np.float32) * scale).reshape(-1)


def quantize_q4_0(values: np.ndarray) -> bytes:
    """float32 (a multiple of 32 values) to Q4_0 blocks, as llama.cpp's reference quantiser.

    Used to write test files; the converter only reads."""
    import numpy as np

    x = np.asarray(values, dtype=np.float32).reshape(-1, QK)
    idx = np.argmax(np.abs(x), axis=1)
    peak = x[np.arange(len(x)), idx]
    d = (peak / -8.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.divide(1.0, d32, out=np.zeros_like(d32), where=d32 != 0)
    q = np.clip(np.trunc(x * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    out = np.empty((len(x), Q4_BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = d.reshape(-1, 1).view(np.uint8)
    out[:, 2:] = packed
    return out.tobytes()

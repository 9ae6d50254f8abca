"""A pure-Python port of ``tok_content`` in the carrier's ``e5.c``: the reference segmentation.

The converted ``tokenizer.json`` must give the same ids; tests compare the two. Steps, as in
the C: map each codepoint through the file's normalization table (a codepoint may become
several, or none), collapse runs of spaces into one, prepend a space unless the text starts
with one, turn spaces into the metaspace ``▁``, then run a Viterbi search over the Unigram
pieces, in float32 like the C. A codepoint that no piece covers becomes ``<unk>`` on its own
(two unknowns in a row stay two ``<unk>``). The ``<unk>`` piece itself never matches text.
"""

from __future__ import annotations

from pathlib import Path

from assistant.models.embedders.e5file import E5Vocab

META = "\u2581"
_UNK_PENALTY = 10.0


class E5Segmenter:
    def __init__(self, vocab: E5Vocab) -> None:
        import numpy as np

        self.vocab = vocab
        self.scores = vocab.scores.astype(np.float32)
        self.piece_ids: dict[str, int] = {}
        for index, piece in enumerate(vocab.pieces):
            if piece and index != vocab.unk:
                self.piece_ids.setdefault(piece, index)  # the C's hash table finds the first
        self.max_piece_bytes = max(1, *(len(p.encode("utf-8")) for p in vocab.pieces))
        self.unk_score = np.float32(self.scores.min()) - np.float32(_UNK_PENALTY)
        self.table = {chr(cp): "".join(map(chr, out)) for cp, out in vocab.normalization.items()}

    def normalize(self, text: str) -> str:
        """The text the Viterbi search sees (with ``▁`` for spaces)."""
        text = text.split("\0", 1)[0]  # the C reads a NUL-terminated string
        chars = "".join(self.table.get(ch, ch) for ch in text)
        collapsed: list[str] = []
        for ch in chars:
            if ch == " " and collapsed and collapsed[-1] == " ":
                continue
            collapsed.append(ch)
        if not collapsed or collapsed[0] != " ":
            collapsed.insert(0, " ")
        return "".join(collapsed).replace(" ", META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>`` / ``</s>``."""
        import numpy as np

        chars = self.normalize(text)
        n = len(chars)
        byte_at = [0]
        for ch in chars:
            byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0.0)
        back_piece = [-1] * (n + 1)
        back_from = [0] * (n + 1)
        for i in range(n):
            for end in range(i + 1, n + 1):
                if byte_at[end] - byte_at[i] > self.max_piece_bytes:
                    break
                index = self.piece_ids.get(chars[i:end])
                if index is not None:
                    score = np.float32(best[i] + self.scores[index])
                    if score > best[end]:
                        best[end], back_piece[end], back_from[end] = score, index, i
            unknown = np.float32(best[i] + self.unk_score)
            if unknown > best[i + 1]:
                best[i + 1], back_piece[i + 1], back_from[i + 1] = unknown, -1, i
        ids: list[int] = []
        position = n
        while position > 0:
            ids.append(self.vocab.unk if back_piece[position] < 0 else back_piece[position])
            position = back_from[position]
        return ids[::-1]

    def ids(self, text: str) -> list[int]:
        """Token ids as the model sees them: ``<s>`` content ``</s>``."""
        return [self.vocab.bos, *self.content_ids(text), self.vocab.eos]


def segmenter_from_folder(folder: Path) -> E5Segmenter:
    """The reference segmentation of a converted folder: the pieces and scores of its
    ``tokenizer.json`` (the file's, verbatim but for the unk piece's score, which the converter
    made unreachable and kept beside it) with the table the converter kept beside it."""
    import json

    import numpy as np

    model = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    table = json.loads((folder / "e5s1_normalization.json").read_text(encoding="utf-8"))
    scores = [score for _, score in model["vocab"]]
    scores[table["unk"]] = table.get("unk_score", scores[table["unk"]])
    vocab = E5Vocab(
        pieces=[piece for piece, _ in model["vocab"]],
        scores=np.asarray(scores, dtype=np.float32),
        bos=table["bos"], eos=table["eos"], pad=table["pad"], unk=table["unk"],
        normalization={int(cp): tuple(out) for cp, out in table["normalization"].items()},
    )  # fmt: skip
    return E5Segmenter(vocab)

"""Exact and near-duplicate detection (MinHash + LSH), and the leakage check against suites.

Texts are compared in their normalised form (``assistant.leakage.text.normalized``: NFKC,
case folding, punctuation dropped, whitespace collapsed, arithmetic operators kept as words).
A near duplicate must also state the same numbers, in the same order: templated questions
that differ only in their numbers ("4 × 8 等于多少？" and "2 × 8 等于多少？") are different.

- **Exact**: the SHA-256 of the normalised text.
- **Near**: Jaccard similarity of character shingles, 3 characters for mostly-CJK text and 5
  otherwise (a Chinese character carries about as much as a short English word). MinHash
  signatures (128 permutations, seeded, so runs repeat) go into LSH bands chosen so that a
  pair at the threshold becomes a candidate with probability >= 99%; every candidate is
  then confirmed with the exact Jaccard of the two shingle sets, so a reported similarity is
  never an estimate. Written here (numpy only) rather than taken from ``datasketch``:
  candidates are confirmed exactly, and shingling is ours to make work for Chinese.

The leakage check is not this: it is ``assistant.leakage`` (one rule for every path into
training, stricter on short questions than a Jaccard threshold), which ``LeakageChecker``
applies to training ``Example``s: every user-side text of an example (each user turn, and
Alpaca's ``input`` on its own) against every question of the suites, and a whole group of
examples (a synthesized question and its paraphrases, tagged ``from:<hash>``) when any of
them leaks.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.leakage import EvalQuestion, QuestionIndex, SuiteInfo, load_eval_questions, project_suites_dir
from assistant.leakage.text import mostly_cjk, normalized, numbers, text_hash
from finetune.data.load import Example

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 128
DEFAULT_THRESHOLD = 0.85
_PRIME = 4294967311  # the smallest prime above 2**32


def shingles(text: str) -> set[str]:
    """Character shingles of the normalised text: 3-grams when mostly CJK, else 5-grams."""
    norm = normalized(text)
    size = 3 if mostly_cjk(norm) else 5
    if len(norm) <= size:
        return {norm} if norm else set()
    return {norm[i : i + size] for i in range(len(norm) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def lsh_bands(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """``(bands, rows)``: the most rows per band that still catch a pair at ``threshold`` 99% of the time."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= 0.99:
            best = (bands, rows)
    return best


class MinHashIndex:
    """Shingle sets with MinHash-LSH lookup; ``similar`` confirms candidates exactly."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, num_perm: int = NUM_PERM, seed: int = 1) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"the near-duplicate threshold must be in (0, 1], got {threshold}")
        import numpy as np

        self.threshold = threshold
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 2**32, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, 2**32, size=num_perm, dtype=np.uint64)
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self.sets: list[set[str]] = []
        self.keys: list[Any] = []
        self.tags: list[object] = []

    def signature(self, grams: set[str]) -> np.ndarray:
        import numpy as np

        if not grams:
            return np.full(len(self._a), _PRIME, dtype=np.uint64)
        values = np.fromiter(
            (zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams)
        )
        # a, b and the values are below 2**32, so a * v + b stays below 2**64.
        return ((np.outer(values, self._a) + self._b) % np.uint64(_PRIME)).min(axis=0)

    def _band_keys(self, grams: set[str]) -> list[bytes]:
        sig = self.signature(grams)
        return [sig[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]

    def add(self, key: Any, grams: set[str], tag: object = None) -> None:
        index = len(self.sets)
        self.sets.append(grams)
        self.keys.append(key)
        self.tags.append(tag)
        for bucket, band in zip(self._buckets, self._band_keys(grams), strict=True):
            bucket.setdefault(band, []).append(index)

    def similar(self, grams: set[str], tag: object = None) -> tuple[Any, float] | None:
        """The most similar stored key at or above the threshold, with its exact Jaccard,
        among those added with the same ``tag``."""
        candidates: set[int] = set()
        for bucket, band in zip(self._buckets, self._band_keys(grams), strict=True):
            candidates.update(bucket.get(band, ()))
        best: tuple[Any, float] | None = None
        for index in sorted(candidates):
            if self.tags[index] != tag:
                continue
            score = jaccard(grams, self.sets[index])
            if score >= self.threshold and (best is None or score > best[1]):
                best = (self.keys[index], score)
        return best


# ---- dedup ------------------------------------------------------------------------------------
@dataclass
class DedupResult:
    kept: list[Example]
    exact: list[dict[str, Any]] = field(default_factory=list)  # {dropped, kept}
    near: list[dict[str, Any]] = field(default_factory=list)  # {dropped, kept, similarity}


class Deduplicator:
    """Remembers kept examples across calls (domain first, then general data against both).

    An example is compared by its whole text (prompt and reply). One tagged ``paraphrase``
    is compared by its prompt alone, with the prompts of the kept examples: it shares its
    answer with the original on purpose, and comparing whole texts would undo the
    augmentation; a paraphrase whose question is a near-copy is still dropped.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.hashes: dict[str, str] = {}
        self.index = MinHashIndex(threshold)
        self.prompt_hashes: dict[str, str] = {}
        self.prompt_index = MinHashIndex(threshold)

    def run(self, examples: Sequence[Example]) -> DedupResult:
        result = DedupResult([])
        for example in examples:
            paraphrase = "paraphrase" in example.tags and not example.is_text
            text = example.prompt if paraphrase else example.full_text
            hashes, index = (
                (self.prompt_hashes, self.prompt_index) if paraphrase else (self.hashes, self.index)
            )
            digest = text_hash(text)
            if digest in hashes:
                result.exact.append({"dropped": example.source, "kept": hashes[digest]})
                continue
            grams = shingles(text)
            match = index.similar(grams, numbers(text))
            if match is not None:
                result.near.append(
                    {"dropped": example.source, "kept": match[0], "similarity": round(match[1], 3)}
                )
                continue
            self.hashes.setdefault(text_hash(example.full_text), example.source)
            self.index.add(example.source, shingles(example.full_text), numbers(example.full_text))
            if not example.is_text:
                self.prompt_hashes.setdefault(text_hash(example.prompt), example.source)
                self.prompt_index.add(example.source, shingles(example.prompt), numbers(example.prompt))
            result.kept.append(example)
        return result


# ---- leakage ----------------------------------------------------------------------------------
GROUP_TAG = "from:"  # examples tagged from:<key> stand or fall together (a question and its paraphrases)


def group_tag(question: str) -> str:
    """The tag a synthesized question and every paraphrase of it carry."""
    return GROUP_TAG + text_hash(question)[:16]


def _group(example: Example) -> str | None:
    return next((t for t in example.tags if t.startswith(GROUP_TAG)), None)


class LeakageChecker:
    """``assistant.leakage.QuestionIndex`` over training examples."""

    def __init__(self, questions: Sequence[EvalQuestion]) -> None:
        self.index = QuestionIndex(questions)

    def find(self, example: Example) -> dict[str, Any] | None:
        """The evaluation item ``example`` leaks, as ``{suite, item, match, similarity}``, or ``None``."""
        return self.index.find(example.probes(), text_mode=example.is_text)

    def split(self, examples: Sequence[Example]) -> tuple[list[Example], list[dict[str, Any]]]:
        """``(clean examples, leaks)``; each leak names the example's source, the suite and the item.
        When one example of a group (``from:`` tag) leaks, the others go too, as ``match: group``
        with ``via`` the source of the one that leaked."""
        found = [self.find(example) for example in examples]
        leaked_groups: dict[str, tuple[str, dict[str, Any]]] = {}
        for example, leak in zip(examples, found, strict=True):
            key = _group(example)
            if leak is not None and key is not None:
                leaked_groups.setdefault(key, (example.source, leak))
        kept, leaks = [], []
        for example, leak in zip(examples, found, strict=True):
            key = _group(example)
            if leak is None and key in leaked_groups:
                via, first = leaked_groups[key]
                leak = {"suite": first["suite"], "item": first["item"], "match": "group",
                        "similarity": first["similarity"], "via": via}  # fmt: skip
            if leak is None:
                kept.append(example)
            else:
                leaks.append({"source": example.source, **leak})
        return kept, leaks


__all__ = [
    "DEFAULT_THRESHOLD",
    "GROUP_TAG",
    "DedupResult",
    "Deduplicator",
    "EvalQuestion",
    "LeakageChecker",
    "MinHashIndex",
    "SuiteInfo",
    "group_tag",
    "jaccard",
    "load_eval_questions",
    "lsh_bands",
    "normalized",
    "numbers",
    "project_suites_dir",
    "shingles",
    "text_hash",
]

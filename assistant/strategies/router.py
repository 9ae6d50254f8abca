"""The router of the ``route`` strategy: is a question in the adapter's domain, or general?

Learnt from the fine-tuning data (in-domain questions) against general questions, by nearest
neighbours in a sentence-embedding space (the knowledge base's embedding model, with its query
prefix): a question's *score* is the mean cosine of its ``k`` nearest in-domain examples minus
the mean cosine of its ``k`` nearest general examples. It goes to the adapter when the score is
above a threshold.

The threshold is calibrated, not guessed: each side is split (seeded) into a neighbour bank and a
held-out validation part; the validation questions are scored against the bank, and the
threshold is the one that maximises balanced accuracy on them (the mean of the in-domain and the
general recall, so a lopsided mix cannot win by always saying one side). The midpoint between
two neighbouring validation scores is taken, so the threshold sits in the gap it separates. The
router that answers then uses every example as its bank.

A fitted router is kept per process, keyed by the embedder and the files (path, size, mtime), so a
strategy built again (each ``ladder ask``, each evaluation batch) does not embed the data again.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from assistant.settings import Settings

Encoder = Callable[[Sequence[str]], "np.ndarray"]


# ---- training texts ---------------------------------------------------------------------------
def row_text(row: dict[str, Any]) -> str | None:
    """The question of one JSONL row: a chat's first user message, instruction + input (as
    ``ladder finetune prepare`` joins them), or ``user_input`` / ``question`` / ``prompt``."""
    messages = row.get("messages")
    if isinstance(messages, list):
        first = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
        return str(first.get("content", "")) if first else None
    if isinstance(row.get("instruction"), str):
        extra = str(row.get("input") or "").strip()
        return row["instruction"].strip() + (f"\n\n{extra}" if extra else "")
    for key in ("user_input", "question", "prompt"):
        if isinstance(row.get(key), str):
            return str(row[key])
    return None


def read_questions(paths: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """(questions, questions tagged ``general``) of JSONL files: prepared training data mixes
    general examples into the domain's, and says which they are with the tag."""
    domain: list[str] = []
    general: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"router data not found: {path}")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{path}:{number}: not JSON: {exc}") from None
            text = row_text(row) if isinstance(row, dict) else None
            if not text or not text.strip():
                continue
            tags = row.get("tags") or []
            (general if "general" in tags else domain).append(text)
    return domain, general


# ---- calibration ------------------------------------------------------------------------------
def balanced_accuracy(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    """Mean of the recall of each side when ``score > threshold`` means in-domain."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        raise ValueError("balanced accuracy needs examples of both sides")
    tpr = sum(s > threshold for s in positives) / len(positives)
    tnr = sum(s <= threshold for s in negatives) / len(negatives)
    return (tpr + tnr) / 2


def calibrate_threshold(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """(threshold, balanced accuracy): the midpoint between neighbouring scores that maximises
    balanced accuracy; among equally good ones, the middle one (the widest margin is not known,
    the middle of the good range is the least committed)."""
    values = sorted(set(scores))
    if not values:
        raise ValueError("no validation scores to calibrate on")
    candidates = [values[0] - 1.0, *((a + b) / 2 for a, b in itertools.pairwise(values))]
    candidates.append(values[-1] + 1.0)
    rated = [(balanced_accuracy(scores, labels, t), t) for t in candidates]
    best = max(score for score, _ in rated)
    good = [t for score, t in rated if score >= best - 1e-12]
    return good[len(good) // 2], best


# ---- the router -------------------------------------------------------------------------------
@dataclass
class RouterReport:
    """How the router was fitted, for traces and reports."""

    embedder: str
    k: int
    threshold: float
    calibrated: bool
    validation_balanced_accuracy: float | None
    validation_items: int
    in_domain_examples: int
    general_examples: int
    fit_s: float


class Router:
    """Nearest-neighbour margin between the in-domain and the general examples."""

    def __init__(self, encode: Encoder, in_domain: np.ndarray, general: np.ndarray, k: int,
                 threshold: float, report: RouterReport) -> None:  # fmt: skip
        self.encode, self.in_domain, self.general = encode, in_domain, general
        self.k, self.threshold, self.report = k, threshold, report

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return margin_scores(self.encode(list(texts)), self.in_domain, self.general, self.k)

    def route(self, texts: Sequence[str]) -> tuple[list[bool], list[float]]:
        """(to the adapter?, score) per question."""
        scores = self.scores(texts)
        return [s > self.threshold for s in scores], scores


def margin_scores(queries: np.ndarray, in_domain: np.ndarray, general: np.ndarray, k: int) -> list[float]:
    """Mean cosine of the k nearest in-domain rows minus that of the k nearest general rows
    (rows are unit vectors)."""
    import numpy as np

    def top_mean(bank: np.ndarray) -> np.ndarray:
        sims = queries @ bank.T
        kk = min(k, bank.shape[0])
        return np.asarray(np.sort(sims, axis=1)[:, -kk:].mean(axis=1))

    return [float(x) for x in top_mean(in_domain) - top_mean(general)]


def _split(texts: list[str], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """(bank, validation); both non-empty when there are two texts or more."""
    shuffled = list(texts)
    rng.shuffle(shuffled)
    n_val = min(max(1, round(len(shuffled) * fraction)), len(shuffled) - 1)
    return shuffled[n_val:], shuffled[:n_val]


def fit_router(
    in_domain: Sequence[str],
    general: Sequence[str],
    encode: Encoder,
    *,
    k: int = 5,
    threshold: float | None = None,
    validation_fraction: float = 0.25,
    seed: int = 0,
    embedder: str = "",
) -> Router:
    """A router over the two sets; ``threshold=None`` calibrates it on a held-out split."""
    import numpy as np

    if len(in_domain) < 2 or len(general) < 2:
        raise ConfigError(
            f"the router needs at least 2 in-domain and 2 general questions, got {len(in_domain)} "
            f"and {len(general)}"
        )
    started = time.perf_counter()
    rng = random.Random(seed)
    domain_bank, domain_val = _split(list(in_domain), validation_fraction, rng)
    general_bank, general_val = _split(list(general), validation_fraction, rng)
    vectors = encode([*domain_bank, *domain_val, *general_bank, *general_val])
    a = len(domain_bank)
    b = a + len(domain_val)
    c = b + len(general_bank)
    d_bank, d_val, g_bank, g_val = vectors[:a], vectors[a:b], vectors[b:c], vectors[c:]
    validation = margin_scores(np.concatenate([d_val, g_val]), d_bank, g_bank, k)
    labels = [True] * len(d_val) + [False] * len(g_val)
    accuracy: float | None = None
    calibrated = threshold is None
    if threshold is None:
        threshold, accuracy = calibrate_threshold(validation, labels)
    else:
        accuracy = balanced_accuracy(validation, labels, threshold)
    report = RouterReport(embedder, k, float(threshold), calibrated, accuracy, len(labels),
                          len(in_domain), len(general), 0.0)  # fmt: skip
    router = Router(encode, np.concatenate([d_bank, d_val]), np.concatenate([g_bank, g_val]), k,
                    float(threshold), report)  # fmt: skip
    report.fit_s = time.perf_counter() - started
    return router


# ---- the embedder -----------------------------------------------------------------------------
def sentence_encoder(settings: Settings, embedder: str | None = None) -> tuple[str, Encoder]:
    """(identity, encode) for the knowledge base's embedding model (``embedder`` overrides the
    ``embedding_model`` setting); questions get the model's query prefix, vectors are unit length."""
    from assistant.knowledge.embeddings import (
        EMBED_BATCH,
        QUERY,
        embed_in_bf16,
        embedding_model,
        load_sentence_model,
        model_prompts,
        with_prompt,
    )

    chosen = replace(settings, embedding_model=embedder) if embedder else settings
    identity, folder = embedding_model(chosen)
    model = load_sentence_model(folder, bf16=embed_in_bf16(chosen))
    prompts = model_prompts(folder)

    def encode(texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        vectors = model.encode(
            with_prompt(texts, prompts, QUERY),
            batch_size=EMBED_BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return identity, encode


_ROUTERS: dict[tuple[Any, ...], Router] = {}
_LOCK = threading.Lock()


def _file_key(path: str | Path) -> tuple[str, int, int]:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def sample(texts: list[str], limit: int, seed: int) -> list[str]:
    """At most ``limit`` of ``texts`` (distinct, seeded sample, order kept)."""
    unique = list(dict.fromkeys(texts))
    if len(unique) <= limit:
        return unique
    keep = set(random.Random(seed).sample(range(len(unique)), limit))
    return [t for i, t in enumerate(unique) if i in keep]


def load_router(
    settings: Settings,
    in_domain: Sequence[str | Path],
    general: Sequence[str | Path],
    *,
    embedder: str | None = None,
    k: int = 5,
    threshold: float | None = None,
    validation_fraction: float = 0.25,
    max_examples: int = 1000,
    seed: int = 0,
) -> Router:
    """The router for these files, fitted once per process. Rows tagged ``general`` in the
    in-domain files count as general questions."""
    files = [*in_domain, *general]
    for path in files:
        if not Path(path).is_file():
            raise ConfigError(f"router data not found: {path}")
    chosen = replace(settings, embedding_model=embedder) if embedder else settings
    files_key = (tuple(_file_key(p) for p in in_domain), tuple(_file_key(p) for p in general))
    key = (chosen.embedding_model, files_key, k, threshold, validation_fraction, max_examples, seed)
    with _LOCK:
        if key not in _ROUTERS:
            domain_texts, tagged_general = read_questions(in_domain)
            plain, tagged = read_questions(general)
            general_texts = [*tagged_general, *plain, *tagged]
            identity, encode = sentence_encoder(settings, embedder)
            _ROUTERS[key] = fit_router(
                sample(domain_texts, max_examples, seed),
                sample(general_texts, max_examples, seed),
                encode,
                k=k,
                threshold=threshold,
                validation_fraction=validation_fraction,
                seed=seed,
                embedder=identity,
            )
        return _ROUTERS[key]

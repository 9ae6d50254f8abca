"""Drift: are recent questions still like the questions the decision was made on, and like the
knowledge base?

Two similarities per question, both through the knowledge base's own embedder and index (so
whatever embedder it was built with; no cosine range is assumed anywhere, every threshold comes
from the reference's own distribution):

- ``kb``: the cosine of the nearest chunk (what ``KnowledgeBase.search`` reports as
  ``Hit.dense_score`` for its best dense hit; computed for all questions in one batch).
  Reference: the dev suite's questions' own values.
- ``dev``: the cosine of the nearest dev-suite question (normalised embeddings, dot product).
  Reference: each dev question's similarity to its nearest *other* dev question (leave-one-out),
  which is what a new question from the same source would see (it sees one more candidate, so
  the comparison leans towards "no drift").

The statistics:

- **KS**: the two-sample Kolmogorov-Smirnov test between the reference and the recent values
  (D = the largest gap between the two empirical CDFs; the p-value from the asymptotic
  Kolmogorov distribution with Stephens' small-sample correction). A small p: the recent
  distribution differs from the reference, in either direction.
- **Far from everything**: a question is *far* when, on every similarity available, it is below
  the reference's 5th percentile, taken as the k-th smallest of the n reference values with
  k = floor(0.05 (n + 1)). For a question exchangeable with the reference ("no drift"), the
  chance of falling below the k-th of n values is k / (n + 1) <= 0.05, whatever the distribution.
  The threshold is itself estimated from n values, so the number of far questions among m
  recent ones follows a beta-binomial law, BetaBinomial(m, k, n + 1 - k) (the share below the
  k-th of n values is Beta(k, n + 1 - k)); ``far_p`` = P(X >= far count) under it, for each
  similarity, the smallest kept (far on all implies far on each). A small p means significantly
  more questions are far than a reference this size allows. With a large reference this is the
  binomial test against 5%; with 40 dev questions it is wider, which keeps a quiet week quiet.
  It needs at least 19 reference questions (k >= 1); with fewer it is not computed.

Recent questions are the distinct questions (by normalised hash) of the window, at most
``max_questions`` of them (a seeded sample), so one question asked a hundred times counts once.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.errors import ConfigError
from assistant.monitoring import AnswerLogStore, iso
from assistant.settings import Settings

if TYPE_CHECKING:
    import numpy as np

FAR_QUANTILE = 0.05
MIN_REFERENCE = 19  # floor(0.05 * (n + 1)) >= 1


class KnowledgeBaseLike(Protocol):
    """What drift uses of ``assistant.knowledge.KnowledgeBase``."""

    name: str

    @property
    def collection(self) -> Any: ...  # the dense index that ``search`` queries (Chroma, cosine space)

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class Similarity:
    """One similarity's reference and recent values, and how they compare."""

    name: str  # kb | dev
    reference_n: int
    recent_n: int
    reference_median: float | None
    recent_median: float | None
    far_below: float | None  # the reference's 5th percentile (k-th smallest); None: reference too small
    ks_d: float | None
    ks_p: float | None


@dataclass
class DriftReport:
    start: str
    end: str
    reference: str  # what the reference questions are: "decision <id> (dev suite <path>)" / "suite <path>"
    kb: str
    recent: int  # distinct recent questions compared
    similarities: list[Similarity] = field(default_factory=list)
    far: int = 0
    far_share: float | None = None
    far_p: float | None = None  # P(X >= far) for questions like the reference (beta-binomial)
    far_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def similarity(self, name: str) -> Similarity | None:
        return next((s for s in self.similarities if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- statistics --------------------------------------------------------------------------------
def far_threshold(reference: Sequence[float], quantile: float = FAR_QUANTILE) -> float | None:
    """The k-th smallest reference value, k = floor(quantile * (n + 1)); None when k < 1."""
    k = math.floor(quantile * (len(reference) + 1) + 1e-9)
    if k < 1:
        return None
    return sorted(reference)[k - 1]


def ks_two_sample(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(D, p): the two-sample Kolmogorov-Smirnov statistic and its asymptotic two-sided p-value
    (Kolmogorov's series at (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D, ne = n m / (n + m))."""
    if not a or not b:
        raise ValueError("both samples need at least one value")
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n and j < m:
        value = min(xs[i], ys[j])
        while i < n and xs[i] == value:
            i += 1
        while j < m and ys[j] == value:
            j += 1
        d = max(d, abs(i / n - j / m))
    root = math.sqrt(n * m / (n + m))
    lam = (root + 0.12 + 0.11 / root) * d
    return d, _kolmogorov_q(lam)


def _kolmogorov_q(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 sum (-1)^(j-1) exp(-2 j^2 lam^2)."""
    if lam < 1e-3:
        return 1.0
    total, sign = 0.0, 1.0
    for j in range(1, 101):
        term = sign * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
        sign = -sign
    return max(0.0, min(1.0, 2.0 * total))


def beta_binomial_tail(successes: int, n: int, a: float, b: float) -> float:
    """P(X >= successes) for X ~ BetaBinomial(n, a, b), summed exactly in log space."""
    if successes <= 0:
        return 1.0
    if successes > n:
        return 0.0

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    terms = [
        math.lgamma(n + 1)
        - math.lgamma(j + 1)
        - math.lgamma(n - j + 1)
        + log_beta(j + a, n - j + b)
        - log_beta(a, b)
        for j in range(successes, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def far_p_value(far: int, recent: int, reference_n: int, quantile: float = FAR_QUANTILE) -> float:
    """P(at least ``far`` of ``recent`` exchangeable questions fall below the k-th smallest of
    ``reference_n`` reference values): BetaBinomial(recent, k, reference_n + 1 - k), because the
    share of the distribution below the k-th of n values is Beta(k, n + 1 - k); it tends to
    Binomial(recent, k / (n + 1)) <= Binomial(recent, 0.05) as the reference grows."""
    k = math.floor(quantile * (reference_n + 1) + 1e-9)
    return beta_binomial_tail(far, recent, k, reference_n + 1 - k)


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# ---- similarities through the knowledge base ----------------------------------------------------
def _embed_questions(kb: KnowledgeBaseLike, texts: Sequence[str]) -> np.ndarray:
    """Unit rows; questions are embedded as queries when the embedder has a query prefix (e5)."""
    import numpy as np

    kwargs = {"side": "query"} if "side" in inspect.signature(kb.embed).parameters else {}
    vectors = np.asarray(kb.embed(list(texts), **kwargs), dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def nearest_chunk(kb: KnowledgeBaseLike, questions: Sequence[str]) -> list[float | None]:
    """The cosine of each question's nearest chunk (None: the knowledge base is empty): the
    questions embedded in one batch by the knowledge base's ``embed`` (as queries), then one
    query of its dense index, the one ``KnowledgeBase.search`` uses (cosine distance = 1 - cos)."""
    if not questions or kb.collection.count() == 0:
        return [None] * len(questions)
    vectors = _embed_questions(kb, questions).astype("float32")
    found = kb.collection.query(query_embeddings=list(vectors), n_results=1, include=["distances"])
    return [1.0 - float(row[0]) if row else None for row in found["distances"]]


def nearest_reference(
    kb: KnowledgeBaseLike, reference: Sequence[str], recent: Sequence[str]
) -> tuple[list[float], list[float]]:
    """(each reference question's leave-one-out nearest-reference cosine, each recent question's
    nearest-reference cosine)."""
    import numpy as np

    ref = _embed_questions(kb, reference)
    own = ref @ ref.T
    np.fill_diagonal(own, -np.inf)
    loo = own.max(axis=1) if len(reference) > 1 else np.array([])
    new = (_embed_questions(kb, recent) @ ref.T).max(axis=1) if recent else np.array([])
    return [float(v) for v in loo], [float(v) for v in new]


def _compare(name: str, reference: Sequence[float], recent: Sequence[float]) -> Similarity:
    ks = ks_two_sample(reference, recent) if reference and recent else None
    return Similarity(
        name=name,
        reference_n=len(reference),
        recent_n=len(recent),
        reference_median=_median(reference),
        recent_median=_median(recent),
        far_below=far_threshold(reference),
        ks_d=ks[0] if ks else None,
        ks_p=ks[1] if ks else None,
    )


def _distinct(questions: Sequence[str]) -> list[str]:
    from assistant.feedback import question_hash

    seen: dict[str, str] = {}
    for question in questions:
        seen.setdefault(question_hash(question), question)
    return list(seen.values())


def drift_report(
    kb: KnowledgeBaseLike,
    reference: Sequence[str],
    recent: Sequence[str],
    *,
    reference_label: str,
    start: str = "",
    end: str = "",
    max_questions: int = 500,
    seed: int = 0,
) -> DriftReport:
    """Compare ``recent`` questions with the ``reference`` questions and the knowledge base."""
    reference = _distinct(reference)
    recent = _distinct(recent)
    notes = []
    if len(recent) > max_questions:
        notes.append(f"{len(recent)} distinct recent questions; a seeded sample of {max_questions} compared")
        recent = random.Random(seed).sample(recent, max_questions)
    report = DriftReport(start=start, end=end, reference=reference_label, kb=kb.name, recent=len(recent))
    if len(reference) < 2:
        raise ConfigError(f"drift needs at least 2 reference questions, got {len(reference)}")
    ref_dev, new_dev = nearest_reference(kb, reference, recent)
    ref_kb_raw, new_kb_raw = nearest_chunk(kb, reference), nearest_chunk(kb, recent)
    if all(v is None for v in ref_kb_raw):
        notes.append(f"knowledge base {kb.name!r} is empty: only the dev-suite similarity is compared")
        pairs = [("dev", ref_dev, new_dev)]
    else:
        ref_kb = [v for v in ref_kb_raw if v is not None]
        new_kb = [v if v is not None else -math.inf for v in new_kb_raw]
        pairs = [("kb", ref_kb, new_kb), ("dev", ref_dev, new_dev)]
    report.similarities = [_compare(name, ref, new) for name, ref, new in pairs]
    thresholds = [s.far_below for s in report.similarities]
    if len(reference) < MIN_REFERENCE or any(t is None for t in thresholds):
        notes.append(
            f"{len(reference)} reference questions: "
            f"the far-from-everything test needs at least {MIN_REFERENCE}"
        )
    elif recent:
        far_flags = [
            all(new[i] < t for (_, _, new), t in zip(pairs, thresholds, strict=True) if t is not None)
            for i in range(len(recent))
        ]
        report.far = sum(far_flags)
        report.far_share = report.far / len(recent)
        # Far on every similarity implies far on each: each one's tail bounds P; keep the tightest.
        report.far_p = min(far_p_value(report.far, len(recent), len(ref)) for _, ref, _ in pairs)
        report.far_examples = [q for q, far in zip(recent, far_flags, strict=True) if far][:5]
    if not recent:
        notes.append("no questions in the window")
    report.notes = notes
    return report


# ---- where the reference and the recent questions come from --------------------------------------
@dataclass
class DriftReference:
    questions: list[str]
    label: str
    kb: str | None


def reference_from_suite(path: Path | str) -> DriftReference:
    from evaluation.suites.source import SuiteFiles

    _, items = SuiteFiles().suite(Path(path))
    return DriftReference([i.question.user_input for i in items], f"suite {path}", None)


def stored_decision(settings: Settings, decision: str, needed_for: str, hint: str | None = None) -> Any:
    """``(the stored Decision, its DecisionConfig read again from its file)``; ``ConfigError``
    when the file is gone (``needed_for`` says what could not be done)."""
    from evaluation.decide.engine import load_decision_config
    from evaluation.decide.store import DecisionStore

    with DecisionStore(settings.db_path) as store:
        stored = store.load_decision(decision)
    config_path = Path(stored.config_path) if stored.config_path else None
    if config_path is None or not config_path.is_file():
        raise ConfigError(
            f"decision {stored.decision_id} was made from {stored.config_path or 'an unsaved config'}, "
            f"which is not there any more: {needed_for}",
            hint=hint,
        )
    return stored, load_decision_config(config_path)


def reference_from_decision(settings: Settings, decision: str) -> DriftReference:
    """The dev suite's questions of a stored decision (re-read from its config), and its kb."""
    stored, config = stored_decision(
        settings, decision, "its dev suite cannot be read", "pass the dev suite with --suite FILE instead"
    )
    found = reference_from_suite(config.dev)
    found.label = f"decision {stored.decision_id} (dev suite {config.dev})"
    found.kb = config.kb
    return found


def recent_questions(
    settings: Settings, days: float, as_of: datetime | None = None
) -> tuple[str, str, list[str]]:
    """(start, end, the questions logged in the last ``days`` days before ``as_of``)."""
    end = as_of or datetime.now(UTC)
    start = end - timedelta(days=days)
    with AnswerLogStore(settings.db_path) as store:
        entries = store.entries(iso(start), iso(end))
    return iso(start), iso(end), [e.question for e in entries]


def drift(
    settings: Settings,
    reference: DriftReference,
    *,
    kb: str | KnowledgeBaseLike | None = None,
    days: float = 7,
    as_of: datetime | None = None,
    max_questions: int = 500,
) -> DriftReport:
    """Drift of the last ``days`` days' questions against ``reference`` and a knowledge base
    (``kb``: a name, an open knowledge base, or None for the reference's own)."""
    kb = kb if kb is not None else reference.kb
    if kb is None:
        raise ConfigError(
            "drift needs a knowledge base: its embedder measures the similarities",
            hint="pass --kb NAME (the one the deployed strategy answers from)",
        )
    start, end, questions = recent_questions(settings, days, as_of)
    with contextlib.ExitStack() as stack:
        opened: KnowledgeBaseLike
        if isinstance(kb, str):
            from assistant.knowledge import KnowledgeBase

            opened = stack.enter_context(KnowledgeBase.open(kb, settings))
        else:
            opened = kb
        return drift_report(
            opened,
            reference.questions,
            questions,
            reference_label=reference.label,
            start=start,
            end=end,
            max_questions=max_questions,
        )

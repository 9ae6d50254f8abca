"""Recording end users' ratings and the reviewer's work on them (list, dismiss, promote,
export): the functions ``assistant.feedback`` exports. Each opens the store in
``settings.db_path`` and closes it again; promoted rows are written by ``files``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.feedback.errors import FeedbackError, FeedbackNotFound, LeakageRefused
from assistant.feedback.files import SuiteFilesReader, default_path, reference_of, write_export, write_row
from assistant.feedback.store import (
    DISMISSED,
    NEW,
    PROMOTED,
    STATUSES,
    FeedbackItem,
    FeedbackStore,
    Promotion,
    now,
)
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.types import Answer


# suite = the test side; sft and pairs = the training side; train = sft, plus pairs when possible.
TARGETS = ("suite", "sft", "pairs", "train")
SIDES = {"suite": "test", "sft": "train", "pairs": "train"}
MAX_TEXT_CHARS = 20_000
MAX_CONTEXTS = 50


def question_hash(question: str) -> str:
    """The hash of a question with case, width, whitespace and punctuation normalised away."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith(("P", "Z", "C")))
    text = re.sub(r"\s+", "", text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def normalise_rating(rating: str | int | bool) -> str:
    """``up``/``down``; also 1/-1, True/False, ``+1``, 👍/👎."""
    if isinstance(rating, bool):
        return "up" if rating else "down"
    text = str(rating).strip().lower()
    if text in {"up", "1", "+1", "good", "👍", "thumbs_up"}:
        return "up"
    if text in {"down", "-1", "0", "bad", "👎", "thumbs_down"}:
        return "down"
    raise FeedbackError(f"bad rating {rating!r}", hint="use up or down (or 1 / -1)")


def _text(name: str, value: str | None, required: bool) -> str | None:
    if value is None or not str(value).strip():
        if required:
            raise FeedbackError(f"feedback needs a non-empty {name}")
        return None
    value = str(value)
    if len(value) > MAX_TEXT_CHARS:
        raise FeedbackError(f"{name} is {len(value):,} characters; at most {MAX_TEXT_CHARS:,} are stored")
    return value


def _citation(value: Any) -> dict[str, Any]:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, dict):
        return dict(value)
    raise FeedbackError(f"a citation is a mapping, got {type(value).__name__}")


def record_feedback(
    settings: Settings,
    *,
    question: str,
    answer: str,
    rating: str | int | bool,
    correction: str | None = None,
    comment: str | None = None,
    model: str | None = None,
    strategy: str | None = None,
    contexts: Sequence[str] = (),
    citations: Sequence[Any] = (),
    session_id: str | None = None,
    source: str = "api",
) -> FeedbackItem:
    """Store one rating (status ``new``) and return it with its id."""
    contexts = [str(c) for c in contexts]
    if len(contexts) > MAX_CONTEXTS:
        raise FeedbackError(f"{len(contexts)} contexts; at most {MAX_CONTEXTS} are stored")
    item = FeedbackItem(
        id=0,
        created=now(),
        question=str(_text("question", question, True)),
        answer=str(_text("answer", answer, True)),
        rating=normalise_rating(rating),
        correction=_text("correction", correction, False),
        comment=_text("comment", comment, False),
        model=model,
        strategy=strategy,
        contexts=contexts,
        citations=[_citation(c) for c in citations],
        session_id=session_id,
        source=source,
        status=NEW,
        question_hash=question_hash(question),
    )
    with FeedbackStore(settings.db_path) as store:
        item.id = store.add(item)
    return item


def feedback_on_answer(
    settings: Settings,
    answer: Answer,
    rating: str | int | bool,
    *,
    model: str | None = None,
    strategy: str | None = None,
    correction: str | None = None,
    comment: str | None = None,
    session_id: str | None = None,
    source: str = "chat",
) -> FeedbackItem:
    """``record_feedback`` for an ``Answer`` a strategy gave (what the chat UI holds): the
    question, response, retrieved contexts and citations come from it. ``model`` defaults
    to the answer's backend model id."""
    return record_feedback(
        settings,
        question=answer.user_input,
        answer=answer.response,
        rating=rating,
        correction=correction,
        comment=comment,
        model=model or answer.model_id,
        strategy=strategy,
        contexts=answer.retrieved_contexts,
        citations=answer.citations,
        session_id=session_id,
        source=source,
    )


def feedback_counts(settings: Settings) -> dict[str, int]:
    """Items per status (``new``, ``promoted``, ``dismissed``; absent = 0): a review queue badge."""
    with FeedbackStore(settings.db_path) as store:
        return store.counts()


def get_feedback(settings: Settings, feedback_id: int) -> FeedbackItem:
    with FeedbackStore(settings.db_path) as store:
        item = store.get(int(feedback_id))
    if item is None:
        raise FeedbackNotFound(f"no feedback with id {feedback_id}", hint="see `ladder feedback list`")
    return item


def list_feedback(
    settings: Settings,
    *,
    status: str | None = None,
    rating: str | None = None,
    session_id: str | None = None,
    limit: int | None = 50,
) -> list[FeedbackItem]:
    """Newest first, optionally only one status (new, promoted, dismissed) or rating (up, down)."""
    if status is not None and status not in STATUSES:
        raise FeedbackError(f"bad status {status!r}", hint=f"use one of {', '.join(STATUSES)}")
    with FeedbackStore(settings.db_path) as store:
        return store.query(
            status=status,
            rating=normalise_rating(rating) if rating is not None else None,
            session_id=session_id,
            limit=limit,
        )


def dismiss(settings: Settings, feedback_id: int, note: str | None = None) -> FeedbackItem:
    """Mark an item reviewed and not useful. A promoted item cannot be dismissed."""
    with FeedbackStore(settings.db_path) as store, store.transaction():
        item = store.get(int(feedback_id))
        if item is None:
            raise FeedbackNotFound(f"no feedback with id {feedback_id}")
        if item.status == PROMOTED:
            where = ", ".join(f"{p.target} ({p.path})" for p in item.promotions)
            raise FeedbackError(f"feedback {feedback_id} is already promoted to {where}; it stays promoted")
        store.set_status(item.id, DISMISSED, note)
    return get_feedback(settings, feedback_id)


def promote(
    settings: Settings,
    feedback_id: int,
    target: str,
    *,
    path: Path | str | None = None,
    reference: str | None = None,
    suites: SuiteFilesReader | None = None,
    check_suites: Sequence[Path | str] = (),
) -> list[Promotion]:
    """Promote one rating to ``suite`` (a QA suite YAML; created or extended), ``sft`` (a chat
    JSONL), ``pairs`` (a preference-pair JSONL) or ``train`` (sft, plus pairs for a thumbs-down
    with a correction). ``path`` defaults to ``LADDER_HOME/feedback/``; ``reference`` overrides
    the reference answer (default: the correction, else the answer of a thumbs-up). ``suites``
    reads suites: an existing suite's YAML, and the questions a promotion to training data is
    checked against (``evaluation.suites.source.SuiteFiles()``; required for sft, pairs, train).

    Refused (``FeedbackError``, nothing written): an unknown id or target, a dismissed item, an
    item already promoted to that target, no usable reference, and (``LeakageRefused``) a
    question already promoted to the other side, or, for the training side, a question that
    repeats an item of an evaluation suite (``assistant.leakage``: exact, normalised or a near
    duplicate) of the shipped suites, of ``check_suites``, or of a suite feedback was promoted to."""
    if target not in TARGETS:
        raise FeedbackError(f"unknown target {target!r}", hint=f"use one of {', '.join(TARGETS)}")
    done: list[Promotion] = []
    with FeedbackStore(settings.db_path) as store, store.transaction():
        item = store.get(int(feedback_id))
        if item is None:
            raise FeedbackNotFound(f"no feedback with id {feedback_id}", hint="see `ladder feedback list`")
        targets = [target]
        if target == "train":
            targets = ["sft", "pairs"] if item.rating == "down" and item.correction else ["sft"]
        for one in targets:
            _check(store, item, one, reference)
        if any(SIDES[one] == "train" for one in targets):
            promoted = [p for p in map(Path, store.suite_paths()) if p.is_file()]
            _check_suites(item, target, suites, [*map(Path, check_suites), *promoted])
        for one in targets:
            out = Path(path) if path is not None and len(targets) == 1 else default_path(one, settings)
            if path is not None and len(targets) > 1:
                out = Path(path) / default_path(one, settings).name
            written = write_row(one, item, out, reference, suites)
            promotion = Promotion(item.id, one, SIDES[one], str(written), now())
            store.add_promotion(promotion, item.question_hash)
            done.append(promotion)
    return done


def _check(store: FeedbackStore, item: FeedbackItem, target: str, reference: str | None) -> None:
    if item.status == DISMISSED:
        raise FeedbackError(
            f"feedback {item.id} was dismissed", hint="record it again if it should be used after all"
        )
    if any(p.target == target for p in item.promotions):
        previous = next(p for p in item.promotions if p.target == target)
        raise FeedbackError(f"feedback {item.id} is already promoted to {target} ({previous.path})")
    side = SIDES[target]
    for other in store.promotions_of_question(item.question_hash):
        if other.side != side:
            whose = "this rating" if other.feedback_id == item.id else f"feedback {other.feedback_id}"
            raise LeakageRefused(
                f"refused: the question of feedback {item.id} already feeds the {other.side} side "
                f"({whose} was promoted to {other.target}: {other.path}); promoting it to {target} would "
                "let a model be judged on data it was trained on",
                hint="keep it on one side: test (suite) or training (sft, pairs)",
            )
    if target == "pairs":
        if item.rating != "down" or not item.correction:
            raise FeedbackError(
                f"feedback {item.id} is not a thumbs-down with a correction: no preference pair",
                hint="pairs need a rejected answer (the rated one) and a chosen one (the correction)",
            )
        if item.correction.strip() == item.answer.strip():
            raise FeedbackError(f"feedback {item.id}: the correction equals the answer; no preference")
    else:
        reference_of(item, reference)


def _check_suites(
    item: FeedbackItem, target: str, suites: SuiteFilesReader | None, extra: Sequence[Path]
) -> None:
    """Refuse a training-side promotion whose question is an evaluation item (the shipped suites,
    the named ones, and those feedback was promoted to)."""
    from assistant.leakage import QuestionIndex, load_eval_questions

    if suites is None:
        raise TypeError(
            "promoting to training data checks the question against the evaluation suites: "
            "pass suites=SuiteFiles()"
        )
    questions, _ = load_eval_questions(suites, [p.expanduser() for p in extra])
    leak = QuestionIndex(questions).find([item.question])
    if leak is not None:
        how = "is" if leak["match"] == "exact" else f"matches ({leak['match']}, {leak['similarity']})"
        raise LeakageRefused(
            f"refused: the question of feedback {item.id} {how} item {leak['item']} of the evaluation "
            f"suite {leak['suite']}; promoting it to {target} would train a model on a question it is "
            "tested on",
            hint="promote it to a suite (the test side) instead, or dismiss it",
        )


def export_feedback(
    settings: Settings, out: Path | str, *, status: str | None = None, fmt: str = "jsonl"
) -> int:
    """Write every item (with its promotions) as JSONL or CSV; return the number written."""
    items = list_feedback(settings, status=status, limit=None)
    return write_export(items, Path(out), fmt)

"""Generated traffic for the monitoring tests: a small shop handbook (knowledge base), a dev suite
drawn from the same question generator as the quiet traffic, and simulated days of answers and
ratings written straight into the answer log and the feedback table (fixed seeds).

- Quiet days: in-domain questions (returns, shipping, warranty, payment, accounts), 10% of
  ratings thumbs-down, "not in the knowledge base" 10% of the time.
- Drift days: 60% of questions from other domains (football, planets, recipes, ...), 50% of
  ratings thumbs-down.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assistant.feedback import question_hash
from assistant.feedback.store import FeedbackItem, FeedbackStore
from assistant.monitoring import AnswerLogEntry, AnswerLogStore, iso
from assistant.settings import Settings

START = datetime(2026, 1, 1, tzinfo=UTC)
QUIET_DAYS, DRIFT_DAYS = 14, 7

HANDBOOK = {
    "returns.md": "# Returns\nYou can return any item within 30 days of delivery for a full refund. "
    "Send it back with the prepaid label from your account. Returning an item costs nothing; "
    "opened software and gift cards cannot be returned.",
    "shipping.md": "# Shipping\nStandard shipping within Europe takes 3 to 5 working days; express "
    "delivery takes 1 to 2 days and costs 9 euros. We ship to every EU country and to Norway.",
    "warranty.md": "# Warranty\nEvery electronic product has a two-year warranty against defects. "
    "The warranty does not cover accidental damage, water damage or normal wear of shoes.",
    "payment.md": "# Payment\nWe accept credit cards, PayPal, bank transfer and gift cards. Payment "
    "by bank transfer must arrive within 7 days or the order is cancelled.",
    "account.md": "# Your account\nTo reset your password, use the link on the sign-in page. You can "
    "change your email address, delivery address and phone number under account settings.",
}
ITEMS = [
    "a laptop",
    "headphones",
    "a phone case",
    "a coffee machine",
    "running shoes",
    "a desk lamp",
    "a tablet",
    "a winter jacket",
    "a blender",
    "a smartwatch",
    "a backpack",
    "a printer",
]
CITIES = ["Berlin", "Lyon", "Madrid", "Oslo", "Vienna", "Lisbon", "Prague", "Dublin", "Milan", "Ghent"]
METHODS = ["PayPal", "a credit card", "a gift card", "bank transfer", "a debit card", "two gift cards"]
FIELDS = ["email address", "password", "delivery address", "phone number", "billing address", "user name"]
# A clause that follows any question, so the dev suite and the traffic rarely share a question word for word.
CONTEXT = [
    "",
    " I ordered last week.",
    " It was a present.",
    " I live abroad.",
    " I am a new customer.",
    " Please answer briefly.",
    " My order number is 5521.",
]
IN_DOMAIN = [
    ("Can I return {item} after two weeks?", "item"),
    ("How do I send back {item} for a refund?", "item"),
    ("Is there a fee to return {item}?", "item"),
    ("How long does shipping to {city} take?", "city"),
    ("Do you deliver orders to {city}?", "city"),
    ("What does express delivery to {city} cost?", "city"),
    ("Is {item} covered by the warranty?", "item"),
    ("How long is the warranty on {item}?", "item"),
    ("Can I pay for my order with {method}?", "method"),
    ("Do you accept {method} as payment?", "method"),
    ("How do I change the {field} on my account?", "field"),
]
OTHER_DOMAIN = [
    ("Who won the football world cup in {year}?", "year"),
    ("How far is {planet} from the sun?", "planet"),
    ("What is a good recipe for {dish}?", "dish"),
    ("How do I tune a {instrument} by ear?", "instrument"),
    ("What is the capital city of {country}?", "country"),
]
SLOTS = {
    "item": ITEMS,
    "city": CITIES,
    "method": METHODS,
    "field": FIELDS,
    "year": ["1954", "1974", "1990", "2014"],
    "planet": ["Mars", "Jupiter", "Saturn", "Neptune"],
    "dish": ["lasagne", "pad thai", "banana bread", "paella"],
    "instrument": ["violin", "guitar", "cello", "ukulele"],
    "country": ["Peru", "Mongolia", "Kenya", "Canada"],
}


def question(rng: random.Random, templates: list[tuple[str, str]]) -> str:
    template, slot = rng.choice(templates)
    return template.format(**{slot: rng.choice(SLOTS[slot])}) + rng.choice(CONTEXT)


def write_handbook(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in HANDBOOK.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
        paths.append(folder / name)
    return paths


def write_dev_suite(folder: Path, n: int = 40, seed: int = 1) -> Path:
    rng = random.Random(seed)
    rows = [
        {"id": f"dev{i}", "user_input": question(rng, IN_DOMAIN), "reference": "see the handbook"}
        for i in range(n)
    ]
    (folder / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {"name": "shop_dev", "kind": "qa", "data": "dev.jsonl", "metrics": ["exact_match"]}
    path = folder / "dev.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def end_of_day(day: int) -> datetime:
    """The end of simulated day ``day`` (1-based): the moment a check at that day's end looks from."""
    return START + timedelta(days=day)


def simulate(settings: Settings, seed: int = 20) -> None:
    """QUIET_DAYS quiet days, then DRIFT_DAYS drift days, from START."""
    rng = random.Random(seed)
    entries, ratings = [], []
    for day in range(QUIET_DAYS + DRIFT_DAYS):
        drifting = day >= QUIET_DAYS
        for n in range(rng.randint(15, 25)):
            created = START + timedelta(days=day, minutes=30 * n + rng.randint(0, 20))
            off = drifting and rng.random() < 0.6
            text = question(rng, OTHER_DOMAIN if off else IN_DOMAIN)
            not_found = rng.random() < (0.7 if off else 0.1)
            entries.append(
                AnswerLogEntry(
                    created=iso(created),
                    source=rng.choice(["chat", "api", "cli"]),
                    question=text,
                    question_hash=question_hash(text),
                    answer_chars=rng.randint(20, 400),
                    latency_ms=float(rng.randint(300, 3000)),
                    not_in_kb=not_found,
                    citations=0 if not_found else rng.randint(0, 2),
                    best_score=round(rng.uniform(0.2, 0.9), 3),
                    kb="handbook",
                    model="fake",
                    strategy="rag",
                    session_id=f"s{day}-{n}",
                )
            )
            if rng.random() < 0.6:
                down = rng.random() < (0.5 if drifting else 0.1)
                rated = created + timedelta(minutes=1)
                ratings.append(
                    FeedbackItem(
                        0,
                        iso(rated),
                        text,
                        "an answer",
                        "down" if down else "up",
                        session_id=f"s{day}-{n}",
                        source="chat",
                        question_hash=question_hash(text),
                    )
                )
    with AnswerLogStore(settings.db_path) as store:
        store.add(entries, keep_days=10_000, now=end_of_day(QUIET_DAYS + DRIFT_DAYS))
    with FeedbackStore(settings.db_path) as feedback:
        for item in ratings:
            feedback.add(item)


def build_world(root: Path) -> tuple[Settings, Path]:
    """A home under ``root`` with the `handbook` knowledge base (packaged MiniLM) and the
    simulated traffic; returns its settings and the dev suite written beside it."""
    from assistant.knowledge import KnowledgeBase
    from assistant.settings import load_settings

    settings = load_settings(
        {"home": str(root / "home"), "embedding_model": "all-MiniLM-L6-v2", "threads": 1,
         "allowed_roots": str(root)}
    )  # fmt: skip
    with KnowledgeBase.create("handbook", settings) as kb:
        report = kb.add(write_handbook(root / "handbook"))
    assert all(f.status != "failed" for f in report.files), report
    simulate(settings)
    return settings, write_dev_suite(root)

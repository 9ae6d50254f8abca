"""Decision scenarios for tests: dev/test/general QA suites of labelled "cases", a decision
config, and a FakeBackend whose correctness is scripted per rung.

Each rung's config carries a system prompt ``RUNG:<tag>``; the fake finds the tag and the
case in the conversation and answers right for the cases listed for that tag, wrong (another
label) or off format otherwise. So a test says "prompt gets 35 of 40 right, fewshot all"
and the real runner, strategies, metrics and stop rule do the rest.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from assistant.backends.fake import FakeBackend
from assistant.types import Message

LABELS = ("billing", "shipping", "returns", "account")
WORDS = [
    "parcel",
    "invoice",
    "refund",
    "password",
    "login",
    "courier",
    "damaged",
    "late",
    "address",
    "card",
    "charge",
    "twice",
    "order",
    "box",
    "label",
    "printer",
    "warehouse",
    "driver",
    "receipt",
    "coupon",
    "discount",
    "upgrade",
    "plan",
    "email",
    "phone",
    "locked",
    "reset",
    "tracking",
    "number",
    "missing",
    "wrong",
    "size",
    "colour",
    "exchange",
    "store",
    "credit",
    "bank",
    "transfer",
    "delay",
    "weekend",
]
CASE = re.compile(r"Case-(\w+)-(\d+)")


def case_text(split: str, index: int) -> str:
    rng = random.Random(f"{split}-{index}")
    return f"Case-{split}-{index}: " + " ".join(rng.choice(WORDS) for _ in range(14))


def write_suite(folder: Path, split: str, n: int, metrics: Iterable[Any] = ("exact_match",)) -> Path:
    rows = [
        {"id": f"{split}{i}", "user_input": case_text(split, i), "reference": LABELS[i % len(LABELS)]}
        for i in range(n)
    ]
    (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = {"name": f"cases_{split}", "kind": "qa", "data": f"{split}.jsonl", "metrics": list(metrics)}
    path = folder / f"{split}.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def reference(split: str, index: int) -> str:
    return LABELS[index % len(LABELS)]


def rung(strategy: str, tag: str | None = None, **config: Any) -> dict[str, Any]:
    return {
        "name": tag or strategy,
        "strategy": strategy,
        "system_prompt": f"RUNG:{tag or strategy}",
        "max_new_tokens": 16,
        **config,
    }


def write_examples(folder: Path) -> Path:
    path = folder / "examples.jsonl"
    rows = [{"user_input": f"Example about {w}", "reference": LABELS[i % 4]} for i, w in enumerate(WORDS[:6])]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def write_config(folder: Path, n_dev: int = 40, n_test: int = 20, **values: Any) -> Path:
    """A decision config over fresh dev/test suites; ``values`` go in as they are (rungs, targets, ...)."""
    dev, test = write_suite(folder, "dev", n_dev), write_suite(folder, "test", n_test)
    data: dict[str, Any] = {
        "name": "cases",
        "suites": {"dev": dev.name, "test": test.name},
        "targets": {"exact_match": ">= 0.8"},
        "order": "given",
        "rungs": [rung("prompt")],
    }
    data.update(values)
    data = {k: v for k, v in data.items() if v is not None}  # None drops a key (e.g. rungs: defaults)
    path = folder / "decide.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class CaseFake(FakeBackend):
    """``right[tag]``: how many of each split's first cases the rung gets right (or a set of indices,
    or a function of split and index);
    ``off_format`` tags answer in prose instead of a label."""

    def __init__(
        self, right: dict[str, Any], off_format: Iterable[str] = (), crash_after: int | None = None
    ) -> None:
        super().__init__(default=self.reply)
        self.right = right
        self.off_format = set(off_format)
        self.crash_after = crash_after

    def reply(self, conversation: list[Message]) -> str:
        if self.crash_after is not None and len(self.calls) > self.crash_after:
            raise RuntimeError("the model crashed")
        system = next((m.content for m in conversation if m.role == "system"), "")
        found = re.search(r"RUNG:(\S+)", system)
        tag = found.group(1) if found else "?"
        case = next(
            (
                CASE.search(m.content)
                for m in reversed(conversation)
                if m.role == "user" and CASE.search(m.content)
            ),
            None,
        )
        if case is None:
            return "billing"
        split, index = case.group(1), int(case.group(2))
        right = self.right.get(tag, 0)
        if callable(right):
            ok = right(split, index)
        else:
            ok = index in right if isinstance(right, set | frozenset) else index < right
        if tag in self.off_format:
            return f"I believe this ticket is about {reference(split, index)} matters."
        return reference(split, index) if ok else LABELS[(index + 1) % len(LABELS)]

    def tags_called(self) -> set[str]:
        out = set()
        for conversation, _ in self.calls:
            system = next((m.content for m in conversation if m.role == "system"), "")
            found = re.search(r"RUNG:(\S+)", system)
            if found:
                out.add(found.group(1))
        return out


def write_prepared_data(folder: Path, n: int = 120) -> Path:
    """A prepared training folder (``train.jsonl``) of ``n`` routing chats labelled from LABELS."""
    data = folder / "data"
    data.mkdir()
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Sort ticket {i} about {i * 31} boxes"},
                {"role": "assistant", "content": LABELS[i % 4]},
            ]
        }
        for i in range(n)
    ]
    (data / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return data

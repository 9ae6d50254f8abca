"""Build the ``delegate`` scenario: support tickets that need both the company's queue and a refund.

    python datasets/delegate/build.py

writes (deterministically) ``delegate_tickets.jsonl`` and its suite ``delegate_tickets.yaml``.

Each item quotes one Qinghe ticket about a defect or a refund from the demo's held-out routing
*test* split (never trained on), states the price and the days since purchase, and a refund
policy; the answer is ``<queue code> <refund in yuan>``. The queue is known only to the demo's
routing adapter (``demo-ticket-routing-ladder``: ``ladder demo`` trains it), and the refund
follows from the stated policy by arithmetic, which the base model (with a calculator) can do
and the adapter, trained to answer with a queue code only, does not. So the base alone misses the
queue, the adapter alone misses the refund, and ``delegate`` (the base plans, the adapter answers
the queue as a tool) can get both. Scored by exact_match over tokens ("QG-R7 192" = "QG-R7, 192").
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOURCE = ROOT / "datasets" / "demo" / "suites" / "ticket_routing_test.jsonl"
SEED = 20261206
POLICY = (
    "Refund policy: bought at most 7 days ago, a full refund; 8 to 30 days ago, 80% of the price; "
    "more than 30 days ago, 50% of the price."
)
# The routing instruction the adapter was trained with (datasets/demo/build.py), without the ticket.
ROUTING_INSTRUCTION = "把这张青禾客服工单分派到处理队列，只输出队列编号（格式如 QG-X0）。"


def refund(price: int, days: int) -> int:
    share = 100 if days <= 7 else 80 if days <= 30 else 50
    return price * share // 100


def items() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    rows = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines() if line.strip()]
    wanted = [r for r in rows if {"issue:defect", "issue:refund"} & set(r["tags"])]
    out = []
    for index, row in enumerate(wanted, start=1):
        instruction, ticket = str(row["user_input"]).split("\n\n", 1)
        assert instruction == ROUTING_INSTRUCTION, instruction
        price = rng.randrange(6, 60) * 10  # a multiple of 10: every share is a whole number of yuan
        days = rng.choice([rng.randint(1, 7), rng.randint(8, 30), rng.randint(31, 90)])
        question = (
            f"A customer wrote this support ticket: 「{ticket}」\n"
            f"The item cost {price} yuan and was bought {days} days ago. {POLICY}\n"
            "Give the ticket's queue code and the refund in yuan. Reply with exactly: <queue code> <refund>"
        )
        out.append(
            {
                "id": f"delegate_tickets-{index:02d}",
                "user_input": question,
                "reference": f"{row['reference']} {refund(price, days)}",
                "tags": [*row["tags"], f"days:{days}", f"price:{price}", f"source:{row['id']}"],
            }
        )
    return out


SUITE = """\
# Written by datasets/delegate/build.py; edit the script, not this file.
name: delegate_tickets
description: "Tickets that need the company's queue (only the routing adapter knows it) and a
  refund from a stated policy (arithmetic). Answer: <queue code> <refund>."
kind: qa
data: delegate_tickets.jsonl
metrics:
  - exact_match
  - contains_answer
"""


def main() -> None:
    rows = items()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (HERE / "delegate_tickets.jsonl").write_text(text, encoding="utf-8")
    (HERE / "delegate_tickets.yaml").write_text(SUITE, encoding="utf-8")
    print(f"wrote {len(rows)} items to {HERE / 'delegate_tickets.jsonl'}")


if __name__ == "__main__":
    main()

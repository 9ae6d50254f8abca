"""A judged metric for runner and CLI tests, and a QA suite that uses it.

ragas' judged metrics need retrieved contexts (a RAG run) or an embeddings model; this one is
ragas' own faithfulness with the item's reference as the only context, so a plain ``prompt``
run with a fake model calls the judge through the real path (``Judge`` -> the backend's chat
model -> ``parse_reply``) and nothing else is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from evaluation.metrics.base import register_metric
from evaluation.metrics.judge import Judge
from evaluation.metrics.judged import JudgedMetric

METRIC = "test_faithful_to_reference"


class FaithfulToReference(JudgedMetric):
    """Share of the response's statements that the reference supports (ragas' faithfulness)."""

    name: ClassVar[str] = METRIC
    requires: ClassVar[tuple[str, ...]] = ("user_input", "response", "reference")

    def arguments(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "user_input": str(sample["user_input"]),
            "response": str(sample["response"]),
            "retrieved_contexts": [str(sample["reference"])],
        }

    def build(self, judge: Judge) -> Any:
        from ragas.metrics.collections import Faithfulness

        return Faithfulness(llm=judge.ragas_llm())


register_metric(METRIC, FaithfulToReference)


def statements(*texts: str) -> str:
    """The judge's first reply: the response split into statements."""
    return json.dumps({"statements": list(texts)})


def verdicts(*flags: int) -> str:
    """The judge's second reply: one verdict per statement."""
    return json.dumps(
        {
            "statements": [
                {"statement": f"s{i}", "reason": "checked", "verdict": v} for i, v in enumerate(flags)
            ]
        }
    )


def write_judged_suite(folder: Path, items: int = 3) -> Path:
    """A QA suite of ``items`` questions scored by token_f1 and the judged metric above."""
    rows = [
        {"id": f"i{i}", "user_input": f"Question {i}?", "reference": f"Answer {i}."} for i in range(items)
    ]
    (folder / "judged.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = {"name": "judged", "kind": "qa", "data": "judged.jsonl", "metrics": ["token_f1", METRIC]}
    path = folder / "judged.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return path

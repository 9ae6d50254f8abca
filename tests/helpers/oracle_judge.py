"""A scripted strong judge: it answers ragas' prompts as the labelled set's person would.

It stands in for a judge that agrees with people, to check the judge check and the decision
gate end to end through ragas' own metrics (statement splitting, NLI verdicts, usefulness,
attribution, TP/FP/FN). It finds the item a prompt is about by the texts in the prompt, and
reads the reply off the item's labels: a verdict of 1 supports both of an answer's two
statements, 0.5 one of them, 0 neither. ``flip`` makes it disagree on purpose.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from ragas.llms.base import InstructorBaseRagasLLM

from evaluation.calibration.data import LabelledItem, LabelledSet
from evaluation.metrics.judge import Judge


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _verdicts(label: float) -> list[int]:
    return [1, 1] if label >= 0.75 else [1, 0] if label >= 0.25 else [0, 0]


class ConstantEncoder:
    """Every text gets the same vector: embedding similarity is 1, so only the LLM part ranks."""

    def encode(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0] for _ in texts]


class OracleLLM(InstructorBaseRagasLLM):
    def __init__(self, judge: OracleJudge) -> None:
        self.judge = judge

    async def agenerate(self, prompt: str, response_model: type[Any]) -> Any:
        self.judge.usage.calls += 1
        data = self.judge.reply(prompt, response_model.__name__)
        return response_model.model_validate(data)

    def generate(self, prompt: str, response_model: type[Any]) -> Any:
        import asyncio

        return asyncio.run(self.agenerate(prompt, response_model))


class OracleJudge(Judge):
    """A ``Judge`` whose LLM is the labelled set's person. ``noise`` is the share of replies
    replaced by a coin flip (seeded), so a weak judge can be scripted too."""

    def __init__(self, labelled: LabelledSet, noise: float = 0.0, seed: int = 0) -> None:
        from assistant.backends.fake import FakeBackend

        super().__init__(
            FakeBackend(model_id="oracle" if not noise else f"oracle-noise-{noise:g}"), ConstantEncoder()
        )
        self.labelled = labelled
        self.noise = noise
        self.rng = random.Random(seed)
        self._ragas_llm = OracleLLM(self)
        self.texts = {_h(t): t for i in labelled.items for t in (i.sample["response"], i.sample["reference"])}

    def ragas_llm(self) -> Any:
        return self._ragas_llm

    # ---- finding the item ---------------------------------------------------------------
    def _best(self, prompt: str, need: tuple[str, ...], contexts: bool) -> LabelledItem:
        best: tuple[int, LabelledItem] | None = None
        for item in self.labelled.items:
            texts = [item.sample[f] for f in need]
            if not all(t in prompt for t in texts):
                continue
            weight = sum(len(t) for t in texts)
            if contexts:
                if not all(c in prompt for c in item.sample["retrieved_contexts"]):
                    continue
                weight += sum(len(c) for c in item.sample["retrieved_contexts"])
            if best is None or weight > best[0]:
                best = (weight, item)
        if best is None:
            raise AssertionError(f"the oracle cannot tell which item this prompt is about: {prompt[:200]!r}")
        return best[1]

    def _label(self, item: LabelledItem, metric: str) -> float:
        label = item.labels.get(metric)
        value = 0.0 if label is None else label
        if self.noise and self.rng.random() < self.noise:
            return float(self.rng.choice([0.0, 0.5, 1.0]))
        return value

    def _flag(self, flag: int) -> int:
        if self.noise and self.rng.random() < self.noise:
            return self.rng.choice([0, 1])
        return flag

    def _hashes(self, prompt: str) -> list[str]:
        return [h for h in self.texts if f"{h}#1" in prompt]

    # ---- the replies ----------------------------------------------------------------------
    def reply(self, prompt: str, model: str) -> dict[str, Any]:
        if model == "StatementGeneratorOutput":
            # the text being split: the longest known answer or reference in the prompt
            found = sorted((t for t in self.texts.values() if t in prompt), key=len)
            if not found:
                raise AssertionError(f"no known text in {prompt[:200]!r}")
            h = _h(found[-1])
            return {"statements": [f"{h}#1", f"{h}#2"]}
        if model == "NLIStatementOutput":
            item = self._faithfulness_item(prompt)
            verdicts = _verdicts(self._label(item, "faithfulness"))
            statements = [f"{self._hashes(prompt)[0]}#{k + 1}" for k in range(2)]
            return {
                "statements": [
                    {"statement": s, "reason": "oracle", "verdict": v}
                    for s, v in zip(statements, verdicts, strict=True)
                ]
            }
        if model == "AnswerRelevanceOutput":
            item = self._best(prompt, ("response",), contexts=False)
            if self._label(item, "answer_relevancy") >= 0.5:
                return {"question": item.sample["user_input"], "noncommittal": 0}
            return {"question": "", "noncommittal": 1}
        if model == "ContextPrecisionOutput":
            # the person's verdict on the one context in the prompt (the longest known one: a
            # partial passage is a prefix of the full one)
            item = self._best(prompt, ("user_input", "reference"), contexts=False)
            known = [
                (len(context), flag)
                for other in self.labelled.items
                if other.sample["reference"] == item.sample["reference"]
                for context, flag in zip(other.sample["retrieved_contexts"], self._useful(other), strict=True)
                if context in prompt
            ]
            return {"reason": "oracle", "verdict": self._flag(max(known)[1] if known else 0)}
        if model == "ContextRecallOutput":
            item = self._best(prompt, ("user_input", "reference"), contexts=True)
            verdicts = _verdicts(self._label(item, "context_recall"))
            return {
                "classifications": [
                    {"statement": f"ref#{k}", "reason": "oracle", "attributed": v}
                    for k, v in enumerate(verdicts)
                ]
            }
        if model == "ClassificationWithReason":
            item = self._correctness_item(prompt)
            label = self._label(item, "answer_correctness")
            r, g = _h(item.sample["response"]), _h(item.sample["reference"])

            def rows(*names: str) -> list[dict[str, str]]:
                return [{"statement": n, "reason": "oracle"} for n in names]

            if label >= 0.75:
                return {"TP": rows(f"{r}#1", f"{r}#2"), "FP": [], "FN": []}
            if label >= 0.25:
                return {"TP": rows(f"{r}#1"), "FP": rows(f"{r}#2"), "FN": rows(f"{g}#2")}
            return {"TP": [], "FP": rows(f"{r}#1", f"{r}#2"), "FN": rows(f"{g}#1", f"{g}#2")}
        raise AssertionError(f"the oracle does not know the reply model {model}")

    def _useful(self, item: LabelledItem) -> list[int]:
        return [
            int(flag) for flag in item.extra.get("useful") or [0] * len(item.sample["retrieved_contexts"])
        ]

    def _faithfulness_item(self, prompt: str) -> LabelledItem:
        hashes = set(self._hashes(prompt))
        best: tuple[int, LabelledItem] | None = None
        for item in self.labelled.items:
            if _h(item.sample["response"]) not in hashes:
                continue
            if not all(c in prompt for c in item.sample["retrieved_contexts"]):
                continue
            weight = sum(len(c) for c in item.sample["retrieved_contexts"])
            if best is None or weight > best[0]:
                best = (weight, item)
        if best is None:
            raise AssertionError(f"no item for this NLI prompt: {prompt[:200]!r}")
        return best[1]

    def _correctness_item(self, prompt: str) -> LabelledItem:
        hashes = set(self._hashes(prompt))
        for item in self.labelled.items:
            if (
                item.sample["user_input"] in prompt
                and _h(item.sample["response"]) in hashes
                and _h(item.sample["reference"]) in hashes
            ):
                return item
        raise AssertionError(f"no item for this correctness prompt: {prompt[:200]!r}")

"""What a deployment produces: one ``FormatResult`` per serving format and the verdict.

Plain dataclasses that round-trip through JSON; ``manifest.json`` of a deployment is
``Deployment.to_dict()``, so ``ladder deployments show`` says exactly what the run said.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from evaluation.decide.result import Reason, SuiteScores, _reasons, _scores

# Format states.
MEASURED, SKIPPED = "measured", "skipped"
# Deployment states: a format met every target (exit 0), or none did (exit 1).
MET, NOT_MET = "met", "not_met"


@dataclass
class ArtifactFile:
    path: str  # relative to the deployment folder
    bytes: int
    sha256: str


@dataclass
class FormatResult:
    format: str
    engine: str
    rank: int
    state: str = SKIPPED  # measured | skipped
    note: str = ""  # why skipped
    model_ref: str = ""  # how to load it (after the deployment is in place)
    settings: dict[str, Any] = field(default_factory=dict)  # settings overrides to load it
    files: list[ArtifactFile] = field(default_factory=list)
    size_bytes: int = 0
    build_s: float | None = None
    load_s: float | None = None
    peak_rss_bytes: int | None = None
    decode_tokens: int | None = None
    decode_tokens_per_s: float | None = None
    throughput_qps: float | None = None  # questions/s of the batched test-split run
    test: SuiteScores | None = None
    meets: bool = False
    misses: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the builder's facts

    @property
    def cost_per_1k(self) -> float | None:
        return self.test.cost_per_1k if self.test else None


@dataclass
class Deployment:
    name: str
    created: str
    status: str  # met | not_met
    chosen: str | None  # the cheapest format that meets every target
    decision_id: str
    decision_name: str
    rung: str  # the decision's recommended rung
    source_model: str  # the rung's model reference, e.g. "qwen2.5-coder-0.5b+my-adapter"
    base_model: str
    adapter: str | None = None
    adapter_sha256: str | None = None
    strategy: dict[str, Any] = field(default_factory=dict)  # how the rung asks the model
    test_suite: str = ""
    targets: list[str] = field(default_factory=list)
    limits: dict[str, float | None] = field(default_factory=dict)
    confidence: float = 0.95
    formats: list[FormatResult] = field(default_factory=list)
    stop_at_first: bool = False
    machine: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    language: str = "en"

    @property
    def passed(self) -> bool:
        return self.status == MET

    def chosen_format(self) -> FormatResult | None:
        return next((f for f in self.formats if f.format == self.chosen), None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        values = {k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}}
        values["formats"] = [_format(f) for f in data.get("formats", [])]
        return cls(**values)


def _format(data: dict[str, Any]) -> FormatResult:
    values = dict(data)
    values["files"] = [ArtifactFile(**f) for f in data.get("files", [])]
    values["test"] = _scores(data.get("test"))
    values["misses"] = _reasons(data.get("misses"))
    return FormatResult(**values)

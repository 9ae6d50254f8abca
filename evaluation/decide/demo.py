"""``ladder demo``: the three decisions of the Qinghe Goods scenario, end to end.

The scenario lives in ``datasets/demo/`` (written by ``datasets/demo/build.py``): a
fictional company's knowledge base and three question sets whose right verdicts are known
by construction (see ``datasets/demo/README.md``):

1. general knowledge the base model already has: **prompt**;
2. the company's private facts, stated once in its documents: **rag**;
3. routing tickets into 16 queues by a rule shown only through examples: **finetune**.

Each runs through ``run_decision`` exactly as ``ladder decide`` does (the decision configs
are ``datasets/demo/decisions/*.yaml``), so the demo is the product, not a mock-up of it. The
report is one self-contained HTML page: the three verdicts against the expected ones, then
each decision in full.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import ConfigError
from assistant.progress import NullProgress, Progress
from assistant.resources import datasets_dir
from assistant.settings import Settings
from evaluation.decide.result import Decision

if TYPE_CHECKING:
    from assistant.backends.base import LLMBackend

DEMO_DIR = datasets_dir() / "demo"
DEMO_KB = "qinghe-demo"
# The demo's documents are short (about 220 characters each, two or three sections): at the
# default 500-character chunk a whole document is one chunk. 200/40 gives a chunk a section or
# two, so RAG's k=2 context is a third the size with the same hit rate (56/58 answers in the
# top 2 on the private-facts dev and test splits, against 57/58 for whole documents at k=3).
DEMO_CHUNKING = (200, 40)


@dataclass(frozen=True)
class Scenario:
    key: str
    config: str  # under datasets/demo/decisions/
    expected: str  # the rung the decision must recommend
    title_en: str
    title_zh: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("general", "general_knowledge.yaml", "prompt", "General knowledge", "通用知识"),
    Scenario("facts", "private_facts.yaml", "rag", "Private company facts", "公司私有知识"),
    Scenario("routing", "ticket_routing.yaml", "finetune", "Ticket routing", "工单分派"),
)


@dataclass
class DemoOutcome:
    scenario: Scenario
    decision: Decision
    wall_s: float

    @property
    def as_expected(self) -> bool:
        return self.decision.passed and self.decision.recommended == self.scenario.expected


@dataclass
class DemoResult:
    outcomes: list[DemoOutcome] = field(default_factory=list)
    kb_s: float = 0.0
    wall_s: float = 0.0

    @property
    def as_expected(self) -> bool:
        return bool(self.outcomes) and all(o.as_expected for o in self.outcomes)


def pick_scenarios(keys: Sequence[str] | None) -> list[Scenario]:
    if not keys:
        return list(SCENARIOS)
    known = {s.key: s for s in SCENARIOS}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ConfigError(f"unknown demo scenario {unknown[0]!r}", hint=f"choose from {', '.join(known)}")
    return [known[k] for k in keys]


def demo_dir() -> Path:
    if not (DEMO_DIR / "decisions").is_dir():
        raise ConfigError(
            f"the demo data is missing ({DEMO_DIR / 'decisions'})",
            hint="reinstall Ladder (`pip install -e .` in a checkout, or the wheel): it ships the demo data",
        )
    return DEMO_DIR


def ensure_kb(settings: Settings, progress: Progress) -> float:
    """Create the demo knowledge base, or bring it up to date with ``datasets/demo/kb``
    (unchanged files are skipped); returns the seconds it took."""
    return build_kb(DEMO_KB, demo_dir() / "kb", settings, progress, DEMO_CHUNKING)


def build_kb(
    name: str,
    folder: Path,
    settings: Settings,
    progress: Progress,
    chunking: tuple[int, int] | None = None,
) -> float:
    """Create knowledge base ``name``, or bring it up to date with ``folder`` (unchanged files
    are skipped), with ``chunking`` (size, overlap) or the settings' own; the project's own
    documents may be read wherever the command runs from. Returns the seconds it took."""
    import os

    from assistant.knowledge import KnowledgeBase
    from assistant.knowledge.ingest import allowed_roots
    from assistant.settings import replace

    start = time.perf_counter()
    progress.note(f"knowledge base {name}: {folder}")
    roots = os.pathsep.join(str(p) for p in [*allowed_roots(settings), folder])
    settings = replace(settings, allowed_roots=roots)
    if chunking is not None:
        settings = replace(settings, chunk_size=chunking[0], chunk_overlap=chunking[1])
    if name not in KnowledgeBase.list_all(settings):
        KnowledgeBase.create(name, settings).close()
    with KnowledgeBase.open(name, settings) as kb:
        report = kb.add([folder], progress=progress)
    if report.failed:
        failed = report.failed[0]
        raise ConfigError(f"knowledge base {name} could not ingest {failed.path}: {failed.reason}")
    return time.perf_counter() - start


def run_demo(
    settings: Settings,
    progress: Progress | None = None,
    scenarios: Sequence[str] | None = None,
    allow_finetune: bool = True,
    language: str | None = None,
    backend: LLMBackend | None = None,
) -> DemoResult:
    """Run the chosen scenarios' decisions (all three by default) with ``settings.model``;
    ``backend`` answers for the base-model rungs instead (tests, an offline UI demo)."""
    from evaluation.decide.engine import load_decision_config, run_decision

    progress = progress or NullProgress()
    chosen = pick_scenarios(scenarios)
    configs = [load_decision_config(demo_dir() / "decisions" / s.config) for s in chosen]  # fail fast
    result = DemoResult()
    start = time.perf_counter()
    result.kb_s = ensure_kb(settings, progress)
    for number, (scenario, config) in enumerate(zip(chosen, configs, strict=True), 1):
        progress.note(f"scenario {number}/{len(chosen)}: {scenario.title_en} (expected: {scenario.expected})")
        began = time.perf_counter()
        decision = run_decision(
            config, settings, progress, allow_finetune=allow_finetune, language=language, backend=backend
        )
        result.outcomes.append(DemoOutcome(scenario, decision, time.perf_counter() - began))
    result.wall_s = time.perf_counter() - start
    return result


def _main_of(html: str) -> str:
    """The body of a decision page (between ``<main>`` and ``</main>``), headings demoted."""
    match = re.search(r"<main>(.*)</main>", html, flags=re.S)
    body = match.group(1) if match else html
    body = re.sub(r"<footer>.*?</footer>", "", body, flags=re.S)
    return (
        body.replace("<h2>", "<h3>")
        .replace("</h2>", "</h3>")
        .replace("<h1>", "<h2>")
        .replace("</h1>", "</h2>")
    )


def render_demo_html(result: DemoResult, language: str = "en") -> str:
    from evaluation.decide.report import render_html
    from evaluation.report.html_page import CSS, _e, _table

    zh = language == "zh"
    header = (
        ["场景", "预期", "推荐", "状态", "符合预期", "用时"]
        if zh
        else ["scenario", "expected", "recommended", "status", "as expected", "wall time"]
    )
    rows = []
    for outcome in result.outcomes:
        s, d = outcome.scenario, outcome.decision
        title = s.title_zh if zh else s.title_en
        rows.append(
            [
                f'<a href="#{_e(s.key)}">{_e(title)}</a>',
                _e(s.expected),
                _e(d.recommended or "—"),
                _e(d.status),
                "✓" if outcome.as_expected else "✗",
                f"{outcome.wall_s / 60:.1f} min",
            ]
        )
    verdict = result.as_expected
    badge = "ok" if verdict else "bad"
    title = "Ladder 演示：青禾" if zh else "Ladder demo: Qinghe Goods"
    summary = (
        f"{len(result.outcomes)} 个决策，总用时 {result.wall_s / 60:.1f} 分钟"
        f"（知识库 {result.kb_s:.0f} 秒）。"
        if zh
        else f"{len(result.outcomes)} decisions in {result.wall_s / 60:.1f} min "
        f"(knowledge base {result.kb_s:.0f} s)."
    )
    parts = [
        f'<!DOCTYPE html>\n<html lang="{_e(language)}">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        f"<header><h1>{_e(title)}</h1>",
        f'<span class="badge {badge}">{"as expected" if verdict else "NOT as expected"}</span></header>\n',
        f"<p>{_e(summary)}</p>\n",
        _table([_e(h) for h in header], rows),
    ]
    for outcome in result.outcomes:
        s, d = outcome.scenario, outcome.decision
        parts.append(f'<section id="{_e(s.key)}"><h2>{_e(s.title_zh if zh else s.title_en)}</h2>\n')
        parts.append(f"{_main_of(render_html(d))}</section>\n")  # its own "Why" says why
    parts.append("<footer>Ladder demo</footer>\n</main>\n</body>\n</html>\n")
    return "".join(parts)


def write_demo_report(result: DemoResult, out: Path, language: str = "en") -> Path:
    """``out/index.html`` (everything on one page) and each decision's md/html/json beside it."""
    from evaluation.decide.report import write_all

    out.mkdir(parents=True, exist_ok=True)
    for outcome in result.outcomes:
        write_all(outcome.decision, out / outcome.scenario.key)
    path = out / "index.html"
    path.write_text(render_demo_html(result, language), encoding="utf-8")
    return path

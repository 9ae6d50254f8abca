"""Back to the ladder: a new dev/test split from promoted feedback, the decision run again on it,
and the old and new verdicts side by side.

1. **Items**: every question promoted to a suite (``ladder feedback promote --to suite``, the test
   side), with the reference the promotion wrote, read from the promoted suite files.
2. **Leakage**: an item is dropped when a training text repeats it (``assistant.leakage``, the
   check ``ladder feedback promote`` makes: exact, normalised, contained or near duplicate): the
   feedback promoted to training data (sft, pairs) and the decision's fine-tuning data (its
   prepared folder, ``finetune.data``, or its ``finetune.raw`` files). Preparing raw data for the
   re-run checks the new split again, as every decision does.
3. **Split**: the items ordered by their normalised question hash, alternately dev and test (a
   seedless, reproducible halving); ``keep_old`` adds the decision's own dev and test items.
4. **Re-run**: a decision config like the old one with the new suites (its other paths made
   absolute), written beside them under ``LADDER_HOME/monitor/retest/``, run by
   ``evaluation.decide.engine.run_decision`` like ``ladder decide`` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.progress import Progress
from assistant.settings import Settings

DEFAULT_METRICS = ["exact_match", "token_f1", "rouge_l"]


@dataclass
class Verdict:
    """What a decision concluded, in a few fields a table shows side by side."""

    decision_id: str
    status: str
    recommended: str | None
    dev_suite: str
    test_suite: str
    dev_items: int
    rungs: list[dict[str, Any]] = field(default_factory=list)  # label, state, meets, dev means, test means


@dataclass
class RetestResult:
    old: Verdict
    new: Verdict
    config: str  # the new decision config
    dev: str
    test: str
    dev_items: int
    test_items: int
    feedback_items: int  # promoted items found, before the leakage check
    dropped: list[dict[str, Any]] = field(default_factory=list)  # items a training text repeats

    @property
    def changed(self) -> bool:
        return (self.old.status, self.old.recommended) != (self.new.status, self.new.recommended)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}


def verdict(decision: Any) -> Verdict:
    rungs = []
    for rung in decision.rungs:
        dev = {m: e.mean for m, e in rung.dev.metrics.items()} if rung.dev else {}
        test = {m: e.mean for m, e in rung.test.metrics.items()} if rung.test else {}
        rungs.append(
            {"label": rung.label, "state": rung.state, "meets": rung.meets, "dev": dev, "test": test}
        )
    first_dev = next((r.dev for r in decision.rungs if r.dev is not None), None)
    return Verdict(
        decision.decision_id,
        decision.status,
        decision.recommended,
        decision.dev_suite,
        decision.test_suite,
        first_dev.items if first_dev else 0,
        rungs,
    )


# ---- items --------------------------------------------------------------------------------------
def promoted_items(settings: Settings) -> list[dict[str, Any]]:
    """The QA rows of every promoted feedback item in the suites promotions wrote to."""
    from assistant.feedback import list_feedback
    from evaluation.suites.source import SuiteFiles

    promoted = list_feedback(settings, status="promoted", limit=None)
    wanted = {f"feedback-{i.id}" for i in promoted if any(p.target == "suite" for p in i.promotions)}
    paths = sorted({p.path for i in promoted for p in i.promotions if p.target == "suite"})
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        if not Path(path).is_file():
            continue
        _, items = SuiteFiles().suite(Path(path))
        for item in items:
            question = item.question
            if question.id in wanted and question.reference:
                rows.setdefault(
                    question.id,
                    {
                        "id": question.id,
                        "user_input": question.user_input,
                        "reference": question.reference,
                        "tags": list(question.tags),
                    },
                )
    return list(rows.values())


def training_files(settings: Settings, config: Any) -> list[Path]:
    """The training texts a new test item must not be in: feedback promoted to sft/pairs, and the
    decision's fine-tuning data."""
    from assistant.feedback import list_feedback
    from evaluation.decide.training import decision_dir

    files = {
        Path(p.path)
        for i in list_feedback(settings, status="promoted", limit=None)
        for p in i.promotions
        if p.side == "train"
    }
    spec = config.finetune
    folders = [spec.data] if spec.data is not None else [decision_dir(config, settings) / "data"]
    for folder in folders:
        if folder.is_dir():
            files.update(folder.glob("*.jsonl"))
    files.update(p for p in spec.raw if p.suffix == ".jsonl")
    return sorted(f for f in files if f.is_file())


def _probes(row: dict[str, Any]) -> tuple[list[str], bool]:
    """(the texts of a training row a question could hide in, whether it is a plain text row)."""
    if isinstance(row.get("text"), str) and "messages" not in row:
        return [row["text"]], True
    probes = []
    for key in ("messages", "prompt"):
        value = row.get(key)
        if isinstance(value, str):
            probes.append(value)
        elif isinstance(value, list):
            probes += [
                m["content"]
                for m in value
                if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
            ]
    probes += [str(row[k]) for k in ("instruction", "input", "question", "user_input") if row.get(k)]
    return probes, False


def drop_leaks(items: list[dict[str, Any]], files: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict]]:
    """(the items no training text repeats, one record per dropped item naming the file and line)."""
    from assistant.leakage import EvalQuestion, QuestionIndex
    from assistant.records_io import iter_jsonl

    index = QuestionIndex([EvalQuestion("feedback", row["id"], row["user_input"]) for row in items])
    leaked: dict[str, dict[str, Any]] = {}
    for path in files:
        for line, row in iter_jsonl(path):
            probes, text_mode = _probes(row)
            leak = index.find(probes, text_mode=text_mode) if probes else None
            if leak is not None and leak["item"] not in leaked:
                leaked[leak["item"]] = {
                    "item": leak["item"],
                    "match": leak["match"],
                    "similarity": leak["similarity"],
                    "training": f"{path}:{line}",
                }
    return [row for row in items if row["id"] not in leaked], list(leaked.values())


def split_items(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from assistant.feedback import question_hash

    ordered = sorted(items, key=lambda row: (question_hash(row["user_input"]), row["id"]))
    return ordered[0::2], ordered[1::2]


# ---- the new config -------------------------------------------------------------------------------
def _absolute(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value.strip() and not Path(value).expanduser().is_absolute():
        return str((base / value).resolve())
    return value


def _suite_spec(old_dev: Path, name: str, data_file: str) -> dict[str, Any]:
    """The old dev suite's YAML (its metrics, template, ...) over the new data, when it is a QA suite."""
    import yaml

    try:
        old = yaml.safe_load(old_dev.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        old = None
    spec: dict[str, Any] = dict(old) if isinstance(old, dict) and old.get("kind", "qa") == "qa" else {}
    spec.setdefault("metrics", DEFAULT_METRICS)
    spec.update(
        {
            "name": name,
            "kind": "qa",
            "data": data_file,
            "description": f"Promoted feedback, split for a re-test of the decision (from {old_dev}).",
        }
    )
    return spec


def _write_suite(folder: Path, role: str, rows: list[dict[str, Any]], spec: dict[str, Any]) -> Path:
    import yaml

    (folder / f"{role}.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    path = folder / f"{role}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _old_items(path: Path) -> list[dict[str, Any]]:
    from evaluation.suites.source import SuiteFiles

    _, items = SuiteFiles().suite(path)
    return [
        {
            "id": f"old-{i.question.id}",
            "user_input": i.question.user_input,
            "reference": i.question.reference,
            "tags": list(i.question.tags),
        }
        for i in items
        if i.question.reference is not None
    ]


def new_config(config_path: Path, dev: Path, test: Path, name: str, out: Path) -> Path:
    """The old decision YAML with the new suites; every relative path in it made absolute."""
    import yaml

    from evaluation.decide.config import RELATIVE_KEYS

    base = config_path.parent
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["name"] = name  # the same adapter and prepared-data folder as the old decision
    suites = dict(data["suites"])
    suites.update({"dev": str(dev), "test": str(test)})
    suites["general"] = _absolute(suites.get("general"), base)
    data["suites"] = {k: v for k, v in suites.items() if v}
    if data.get("examples"):
        data["examples"] = _absolute(data["examples"], base)
    finetune = data.get("finetune")
    if isinstance(finetune, dict):
        finetune = dict(finetune)
        if finetune.get("data"):
            finetune["data"] = _absolute(finetune["data"], base)
        if finetune.get("raw"):
            raw = finetune["raw"] if isinstance(finetune["raw"], list) else [finetune["raw"]]
            finetune["raw"] = [_absolute(p, base) for p in raw]
        data["finetune"] = finetune
    rungs = []
    for rung in data.get("rungs") or []:
        if isinstance(rung, dict):
            rung = {k: _absolute(v, base) if k in ("config", *RELATIVE_KEYS) else v for k, v in rung.items()}
        rungs.append(rung)
    if rungs:
        data["rungs"] = rungs
    path = out / "decision.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ---- the re-test ----------------------------------------------------------------------------------
def retest(
    settings: Settings,
    decision: str,
    *,
    keep_old: bool = False,
    min_items: int = 4,
    progress: Progress | None = None,
    backend: Any = None,
    evaluator: Any = None,
    trainer: Any = None,
    judge: Any = None,
    allow_finetune: bool | None = None,
) -> RetestResult:
    """Re-run ``decision`` (an id, a prefix or ``latest``) on a new split from promoted feedback.
    ``backend``/``evaluator``/``trainer``/``judge`` as for ``run_decision`` (tests, demos).
    ``ConfigError`` when the decision's config is gone or fewer than ``min_items`` items remain."""
    from evaluation.decide.engine import load_decision_config, run_decision
    from evaluation.monitor.drift import stored_decision

    old, config = stored_decision(settings, decision, "it cannot be run again")
    config_path = Path(old.config_path)
    found = promoted_items(settings)
    items, dropped = drop_leaks(found, training_files(settings, config))
    dev_rows, test_rows = split_items(items)
    if keep_old:
        dev_rows = _old_items(config.dev) + dev_rows
        test_rows = _old_items(config.test) + test_rows
    if len(items) < min_items:
        raise ConfigError(
            f"{len(items)} promoted feedback item(s) usable ({len(found)} promoted to a suite, "
            f"{len(dropped)} repeated in training data); a re-test needs at least {min_items}",
            hint="promote more ratings: ladder feedback promote ID --to suite",
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = settings.home / "monitor" / "retest" / f"{old.decision_id}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    dev = _write_suite(
        out, "dev", dev_rows, _suite_spec(config.dev, f"{config.name}_feedback_dev", "dev.jsonl")
    )
    test = _write_suite(
        out, "test", test_rows, _suite_spec(config.dev, f"{config.name}_feedback_test", "test.jsonl")
    )
    path = new_config(config_path, dev, test, config.name, out)
    new = run_decision(
        load_decision_config(path),
        settings,
        progress,
        backend=backend,
        judge=judge,
        evaluator=evaluator,
        trainer=trainer,
        allow_finetune=allow_finetune,
    )
    return RetestResult(
        old=verdict(old),
        new=verdict(new),
        config=str(path),
        dev=str(dev),
        test=str(test),
        dev_items=len(dev_rows),
        test_items=len(test_rows),
        feedback_items=len(found),
        dropped=dropped,
    )

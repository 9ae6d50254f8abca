"""Preparing fine-tuning data: load, clean, deduplicate, check for leakage, split, mix, write.

    result = prepare(PrepareConfig(domain=(Path("tickets.jsonl"),), out=Path("data/tickets")), settings)

writes ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` (chat: ``{"messages", "tags",
"source"}``; text mode: ``{"text", "tags", "source"}``), ``report.json`` and
``manifest.json`` (inputs with their SHA-256, the settings, a hash of the data) into
``out``. The steps, in order:

1. load every ``--domain`` file (``data_load``: Alpaca, chat, QA, text; text is chunked);
2. clean (``data_clean``: Unicode, control characters, whitespace, optional PII masking)
   and drop empty, too-short and too-long examples;
3. drop exact, then near duplicates (``data_dedup``, MinHash at ``dedup_threshold``);
4. drop examples that match a question of any evaluation suite: every shipped suite and every
   ``suites`` one (``assistant.leakage``: exact, normalised, near duplicates, and the whole group
   of a synthesized question and its paraphrases; the suites are read by the ``SuiteReader``
   the caller passes, see ``finetune.data.suites``);
5. refuse fewer than ``min_examples`` domain examples, with the count at every step;
6. split the domain data (``data_split``, seeded, optionally stratified);
7. load the general set, clean it, dedup it against the domain data and itself, check it
   for leakage, and add ``ratio`` general examples per domain training example.

Every check runs before anything is written; the files are written into a temporary folder
beside ``out`` that is renamed into place at the end, so a failure leaves no partial output.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.leakage import RULE as LEAKAGE_RULE
from assistant.progress import NullProgress, Progress
from assistant.resources import datasets_dir
from assistant.storage import replace_folder, sha256_file
from finetune.data.clean import CleanConfig, TokenCounter, clean_examples
from finetune.data.dedup import DEFAULT_THRESHOLD, Deduplicator, LeakageChecker, load_eval_questions
from finetune.data.errors import DataError
from finetune.data.load import FORMATS, Example, chunk_texts, detect_format, load_file
from finetune.data.report import DataReport, balance_key, label_balance, length_stats
from finetune.data.split import SplitFractions, mix_general, split_examples

if TYPE_CHECKING:
    from assistant.settings import Settings
    from finetune.data.suites import SuiteReader

SPLITS = ("train", "val", "test")
DEFAULT_GENERAL = datasets_dir() / "general" / "general_instructions.jsonl"


@dataclass(frozen=True)
class PrepareConfig:
    domain: tuple[Path, ...]
    out: Path
    general: str = "default"  # "default", "none" or a file
    ratio: float = 5.0  # general examples per domain training example (domain:general = 1:ratio)
    format: str = "auto"
    dedup_threshold: float = DEFAULT_THRESHOLD
    mask_pii: bool = False
    split: SplitFractions = field(default_factory=SplitFractions)
    stratify_by: str | None = None
    min_examples: int = 50
    seed: int = 0
    tokenizer: str | None = None  # a local model whose tokenizer measures lengths
    min_tokens: int = 4
    max_tokens: int = 2048
    suites: tuple[Path, ...] = ()  # evaluation suites checked for leakage besides datasets/suites
    project_suites: bool = True
    text_chunk_chars: int = 2000
    force: bool = False

    def __post_init__(self) -> None:
        if not self.domain:
            raise ConfigError("no domain data", hint="pass --domain FILE (repeatable)")
        if self.format not in FORMATS:
            raise ConfigError(f"unknown format {self.format!r}", hint=f"use one of: {', '.join(FORMATS)}")
        if self.ratio < 0:
            raise ConfigError(f"--ratio must be >= 0, got {self.ratio}")
        if not 0 < self.dedup_threshold <= 1:
            raise ConfigError(f"--dedup-threshold must be in (0, 1], got {self.dedup_threshold}")
        if self.min_examples < 1:
            raise ConfigError(f"--min-examples must be >= 1, got {self.min_examples}")
        if self.stratify_by is not None and not (
            self.stratify_by in ("label", "tag", "source") or self.stratify_by.startswith("tag:")
        ):
            raise ConfigError(
                f"unknown --stratify-by {self.stratify_by!r}", hint="use label, tag, tag:PREFIX or source"
            )
        if self.text_chunk_chars < 100:
            raise ConfigError(f"text_chunk_chars must be >= 100, got {self.text_chunk_chars}")
        try:
            CleanConfig(self.min_tokens, self.max_tokens, self.mask_pii)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def settings_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            domain=[str(p) for p in self.domain],
            out=str(self.out),
            suites=[str(p) for p in self.suites],
            split=asdict(self.split),
            leakage_rule=LEAKAGE_RULE,
        )
        return data


def prepare_options(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``prepare`` mapping (a decision's ``finetune.prepare``) as ``PrepareConfig`` keywords;
    ``split`` may be a mapping (``{train: 0.9, val: 0.1, test: 0}``), a list or ``"0.9,0.1,0"``
    as on the command line."""
    options = dict(raw)
    split = options.get("split")
    if isinstance(split, str):
        split = [float(part) for part in split.split(",")]
    if isinstance(split, list | tuple):
        split = dict(zip(("train", "val", "test"), split, strict=True))
    if isinstance(split, dict):
        options["split"] = SplitFractions(**split)
    return options


@dataclass
class PrepareResult:
    out: Path
    report: DataReport
    manifest: dict[str, Any]
    counts: dict[str, int]  # split -> examples written


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file", hint="give a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out} already exists and is not empty", hint="pass --force to replace it")


def _load(
    paths: tuple[Path, ...], fmt: str, inputs: list[dict[str, Any]], role: str, suites: SuiteReader
) -> list[Example]:
    examples: list[Example] = []
    for path in paths:
        found = fmt if fmt != "auto" else detect_format(path)
        loaded = load_file(path, found, suites)
        inputs.append(
            {
                "role": role,
                "path": str(path),
                "sha256": sha256_file(path),
                "format": found,
                "examples": len(loaded),
            }
        )
        examples += loaded
    return examples


def _filter(
    data: str,
    examples: list[Example],
    config: PrepareConfig,
    counter: TokenCounter,
    dedup: Deduplicator,
    leakage: LeakageChecker,
    report: DataReport,
    lengths: dict[int, int],
) -> list[Example]:
    """Clean, dedup and leakage-check one kind of data, recording every step in ``report``."""
    cleaned = clean_examples(
        examples, CleanConfig(config.min_tokens, config.max_tokens, config.mask_pii), counter
    )
    report.step(data, "clean", len(examples), len(cleaned.kept), dict(cleaned.dropped))
    report.changed[data] = dict(cleaned.changed)
    for kind, count in cleaned.pii.items():
        report.pii[kind] = report.pii.get(kind, 0) + count
    lengths.update((id(e), n) for e, n in zip(cleaned.kept, cleaned.lengths, strict=True))
    deduped = dedup.run(cleaned.kept)
    after_exact = len(cleaned.kept) - len(deduped.exact)
    report.step(data, "exact dedup", len(cleaned.kept), after_exact, {"exact_duplicate": len(deduped.exact)})
    report.step(data, "near dedup", after_exact, len(deduped.kept), {"near_duplicate": len(deduped.near)})
    for kind, pairs in (("exact", deduped.exact), ("near", deduped.near)):
        report.duplicates.setdefault(kind, []).extend({**p, "data": data} for p in pairs)
    kept, leaks = leakage.split(deduped.kept)
    report.step(data, "leakage", len(deduped.kept), len(kept), {"eval_item_match": len(leaks)})
    report.leaks += [{**leak, "data": data} for leak in leaks]
    return kept


def _general_examples(
    config: PrepareConfig, text_mode: bool, inputs: list[dict[str, Any]], suites: SuiteReader
) -> list[Example]:
    if config.general == "default":
        if not DEFAULT_GENERAL.is_file():
            raise ConfigError(
                f"the default general set {DEFAULT_GENERAL} is missing",
                hint="run `python datasets/general/build.py` or pass --general FILE",
            )
        path = DEFAULT_GENERAL
    else:
        path = Path(config.general)
    examples = _load((path,), "auto", inputs, "general", suites)
    out = []
    for example in examples:
        example.origin = "general"
        example.tags = ["general", *[t for t in example.tags if t != "general"]]
        out.append(example.as_text() if text_mode else example)
    if not text_mode and any(e.is_text for e in out):
        raise ConfigError(f"the general set {path} is raw text, but the domain data is instruction data")
    return chunk_texts(out, config.text_chunk_chars) if text_mode else out


def prepare(
    config: PrepareConfig, settings: Settings, progress: Progress | None = None, *, suites: SuiteReader
) -> PrepareResult:
    """Run every step in memory, then write the output folder (see the module docstring).
    ``suites`` reads the evaluation suites (leakage) and QA data: ``SuiteFiles()`` of
    ``evaluation.suites.source``."""
    progress = progress or NullProgress()
    _check_out(config.out, config.force)
    report = DataReport()
    inputs: list[dict[str, Any]] = []
    progress.start("loading data", total=None)
    domain = _load(config.domain, config.format, inputs, "domain", suites)
    modes = {("text" if e.is_text else "chat") for e in domain}
    if len(modes) > 1:
        texts = sorted({i["path"] for i in inputs if i["format"] == "text"})
        raise ConfigError(
            f"raw text ({', '.join(texts)}) and instruction data cannot be mixed",
            hint="prepare continued pre-training text and chat data separately",
        )
    text_mode = modes == {"text"}
    report.mode = "text" if text_mode else "chat"
    if text_mode:
        domain = chunk_texts(domain, config.text_chunk_chars)
    report.step("domain", "load", len(domain), len(domain))
    questions, checked = load_eval_questions(suites, config.suites, config.project_suites)
    report.suites = [asdict(s) for s in checked]
    leakage = LeakageChecker(questions)
    counter = TokenCounter.for_model(config.tokenizer, settings) if config.tokenizer else TokenCounter()
    dedup = Deduplicator(config.dedup_threshold)
    lengths: dict[int, int] = {}
    progress.start("cleaning, dedup and leakage check", total=None)
    domain = _filter("domain", domain, config, counter, dedup, leakage, report, lengths)
    if len(domain) < config.min_examples:
        raise DataError(
            f"only {len(domain)} domain examples remain, fewer than the minimum of {config.min_examples}; "
            f"nothing was written. Step by step: {report.funnel('domain')}",
            hint="add data, lower --min-examples, or raise --dedup-threshold if near duplicates cause it",
        )
    train, val, test = split_examples(domain, config.split, config.seed, config.stratify_by)
    used = 0
    if config.ratio > 0 and config.general != "none":
        general = _general_examples(config, text_mode, inputs, suites)
        report.step("general", "load", len(general), len(general))
        general = _filter("general", general, config, counter, dedup, leakage, report, lengths)
        train, used = mix_general(train, general, config.ratio, config.seed)
        report.step("general", "mix", len(general), used, {"not_sampled": len(general) - used})
        report.mixing = {
            "ratio": config.ratio,
            "domain_train": len(train) - used,
            "general_used": used,
            "general_available": len(general),
        }
    splits = {"train": train, "val": val, "test": test}
    report.splits = {
        name: {
            "domain": sum(e.origin == "domain" for e in part),
            "general": sum(e.origin == "general" for e in part),
            "total": len(part),
        }
        for name, part in splits.items()
    }
    all_written = [e for part in splits.values() for e in part]
    report.lengths = length_stats([lengths[id(e)] for e in all_written], counter.name)
    report.balance = label_balance(splits, balance_key(all_written, config.stratify_by))
    progress.start("writing", total=None)
    manifest = _write(config, splits, report, inputs)
    return PrepareResult(config.out, report, manifest, {n: len(p) for n, p in splits.items()})


def _write(
    config: PrepareConfig, splits: dict[str, list[Example]], report: DataReport, inputs: list[dict[str, Any]]
) -> dict[str, Any]:
    from assistant import __version__

    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        outputs: dict[str, Any] = {}
        for name, examples in splits.items():
            path = tmp / f"{name}.jsonl"
            path.write_text(
                "".join(json.dumps(e.row(), ensure_ascii=False) + "\n" for e in examples), "utf-8"
            )
            outputs[path.name] = {"examples": len(examples), "sha256": sha256_file(path)}
        data_hash = hashlib.sha256("".join(f"{n}:{o['sha256']}\n" for n, o in outputs.items()).encode())
        suite_inputs = [
            {
                "role": "suite",
                "name": s["name"],
                "path": s["path"],
                "sha256": s["sha256"],
                "items": s["items"],
            }
            for s in report.suites
        ]
        manifest = {
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "ladder_version": __version__,
            "mode": report.mode,
            "inputs": inputs + suite_inputs,
            "settings": config.settings_dict(),
            "tokenizer": report.lengths.get("tokenizer"),
            "outputs": outputs,
            "data_hash": data_hash.hexdigest(),
        }
        (tmp / "report.json").write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), "utf-8")
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        replace_folder(tmp, out)  # an existing out: --force, checked before
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


__all__ = [
    "DEFAULT_GENERAL",
    "SPLITS",
    "PrepareConfig",
    "PrepareResult",
    "prepare",
    "prepare_options",
]

"""Suite specs (YAML) and loading a suite into ``SuiteItem``s with rendered prompts.

A suite is data, not code::

    name: demo_exam
    kind: mcq                  # qa | mcq
    format: ceval              # qa | mcq_jsonl | ceval | mmlu | cmmlu (inferred when left out)
    data: demo_exam            # files, or an exam tree's root; relative to this YAML
    split: val                 # exam trees: which split folder to score
    subjects: [law]            # exam trees: optional filter
    k_shot: 5                  # exemplars from dev (exam trees) or from `dev` files
    dev: [dev.jsonl]           # qa / mcq_jsonl: where k-shot exemplars come from
    prompt: "{question}"       # qa / mcq_jsonl: the template; exam trees use their own format
    chain_of_thought: false    # ceval: exemplars with their explanation ("让我们一步一步思考")
    chat_template: false       # logprob mode: wrap the prompt in the model's chat template?
                               # default: no for exam trees (their formats are completion-style,
                               # as lm-evaluation-harness scores them), yes otherwise
    metrics: [accuracy, unparseable, {hit_at_k: {k: 3}}]
    thresholds: {accuracy: 0.8}
    generated: true            # written by `ladder suite generate` (hand-written suites leave it out)
    reviewed: false            # set by `ladder suite apply-review`, with reviewed_at and review counts

Every mistake is a ``SuiteError`` with the YAML file and line of the offending key. The
data files are read by ``evaluation.suites.readers`` (QA, MCQ JSONL) and
``evaluation.suites.exam`` (exam trees).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evaluation.items import SuiteItem
from evaluation.metrics.base import Metric
from evaluation.suites.errors import WHAT_A_SUITE_IS, SuiteError
from evaluation.suites.exam import EXAM_LAYOUTS, ExamLayout, ExamTree
from evaluation.suites.metrics import suite_metrics
from evaluation.suites.readers import (
    ItemIds,
    data_file_kind,
    is_data_file,
    load_mcq_jsonl,
    load_qa,
    options_block,
)
from evaluation.suites.subjects import register_subject

__all__ = [
    "Suite",
    "SuiteError",
    "SuiteItem",
    "SuiteSpec",
    "data_file_spec",
    "is_data_file",
    "load_suite",
    "load_suite_spec",
    "review_note",
    "suite_review_note",
    "suite_yaml_for",
]

KINDS = ("qa", "mcq")
FORMATS = {"qa": ("qa",), "mcq": ("mcq_jsonl", *EXAM_LAYOUTS)}
DEFAULT_METRICS = {"qa": ["exact_match", "token_f1", "rouge_l"], "mcq": ["accuracy", "unparseable"]}
DEFAULT_PROMPTS = {"qa": "{question}", "mcq": "{question}\n{options}\nAnswer:"}


class _SpecValueError(ValueError):
    """A bad value, with the YAML key it belongs to (for the line number)."""

    def __init__(self, key: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.key, self.hint = key, hint


@dataclass
class SuiteSpec:
    """A validated suite; ``data``/``dev`` paths are already resolved against the YAML's folder."""

    name: str
    kind: str
    data: list[Path]
    format: str = ""
    split: str = "val"
    subjects: list[str] | None = None
    k_shot: int = 0
    dev: list[Path] = field(default_factory=list)
    prompt: str | None = None
    chain_of_thought: bool = False
    chat_template: bool | None = None  # None: False for exam trees, True otherwise
    metrics: list[Any] = field(default_factory=list)  # names or {name: {options}}
    thresholds: dict[str, float] = field(default_factory=dict)
    description: str = ""
    # For exams in C-Eval's layout with subjects of their own: {subject: {name_zh, category}}.
    subject_info: dict[str, dict[str, str]] = field(default_factory=dict)
    # A generated suite says so, and whether a person reviewed it (``ladder suite apply-review``
    # sets reviewed, reviewed_at and review: {kept, dropped, edited}). A hand-written suite has
    # none of these keys and counts as reviewed.
    generated: bool = False
    reviewed: bool = True
    reviewed_at: str = ""
    review: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise _SpecValueError("name", "name must be a non-empty string")
        if self.kind not in KINDS:
            raise _SpecValueError("kind", f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.data:
            raise _SpecValueError("data", "data must name at least one file or folder")
        if not self.format:
            exam_tree = self.kind == "mcq" and self.data[0].is_dir()
            self.format = "qa" if self.kind == "qa" else ("ceval" if exam_tree else "mcq_jsonl")
        if self.format not in FORMATS[self.kind]:
            raise _SpecValueError(
                "format",
                f"format {self.format!r} does not fit kind {self.kind!r}",
                hint=f"for {self.kind}: {', '.join(FORMATS[self.kind])}",
            )
        if isinstance(self.k_shot, bool) or not isinstance(self.k_shot, int) or self.k_shot < 0:
            raise _SpecValueError("k_shot", f"k_shot must be an integer >= 0, got {self.k_shot!r}")
        if self.is_exam_tree:
            if self.prompt is not None:
                raise _SpecValueError(
                    "prompt",
                    f"a {self.format} suite uses the {self.format} prompt format",
                    hint="leave `prompt` out, or use format mcq_jsonl",
                )
            if self.dev:
                raise _SpecValueError("dev", "exam trees take exemplars from their own dev/ folder")
        else:
            if self.subjects is not None:
                raise _SpecValueError("subjects", "subjects filters exam trees (ceval, mmlu, cmmlu) only")
            if self.k_shot and not self.dev:
                raise _SpecValueError("k_shot", "k_shot needs `dev`: the file(s) exemplars come from")
            if self.prompt is not None and "{question}" not in self.prompt:
                raise _SpecValueError("prompt", f"prompt must contain {{question}}, got {self.prompt!r}")
        for subject, info in self.subject_info.items():
            if not isinstance(info, dict) or not {"name_zh", "category"} <= set(info):
                raise _SpecValueError("subject_info", f"subject_info.{subject} needs name_zh and category")
        for key in ("generated", "reviewed"):
            if not isinstance(getattr(self, key), bool):
                raise _SpecValueError(key, f"{key} must be true or false, got {getattr(self, key)!r}")
        self.reviewed_at = str(self.reviewed_at or "")  # an unquoted timestamp reads as a datetime
        if not isinstance(self.review, dict):
            raise _SpecValueError("review", "review must be a mapping (kept, dropped, edited)")
        if self.chain_of_thought and self.format != "ceval":
            raise _SpecValueError("chain_of_thought", "chain_of_thought is for the ceval format")
        if not self.metrics:
            self.metrics = list(DEFAULT_METRICS[self.kind])
        if self.chat_template is None:
            self.chat_template = not self.is_exam_tree
        elif not isinstance(self.chat_template, bool):
            raise _SpecValueError("chat_template", f"chat_template must be a boolean: {self.chat_template!r}")

    @property
    def is_exam_tree(self) -> bool:
        return self.format in EXAM_LAYOUTS

    @property
    def needs_review(self) -> bool:
        """Generated and not yet reviewed by a person: its questions and answers are a model's."""
        return self.generated and not self.reviewed

    def prompt_template(self) -> str:
        return self.prompt if self.prompt is not None else DEFAULT_PROMPTS[self.kind]


@dataclass
class Suite:
    spec: SuiteSpec
    items: list[SuiteItem]
    metrics: list[Metric]

    @property
    def has_references(self) -> bool:
        """False for a predictions-only suite (e.g. C-Eval's test split): nothing to score."""
        return any(i.question.reference is not None or i.question.reference_contexts for i in self.items)

    def __len__(self) -> int:
        return len(self.items)


# ---- YAML with line numbers --------------------------------------------------------------------
def _key_lines(node: yaml.Node, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """``path -> 1-based line`` for every mapping key and sequence item in a composed YAML tree."""
    lines: dict[tuple[Any, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            lines[(*prefix, index)] = child.start_mark.line + 1
            lines.update(_key_lines(child, (*prefix, index)))
    return lines


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def load_suite_spec(path: str | Path) -> SuiteSpec:
    """Read and validate a suite YAML (metrics and thresholds included) without loading data."""
    return _load_spec(Path(path))[0]


def review_note(spec: SuiteSpec) -> str | None:
    """One line for a generated suite that no person reviewed, saying what to do; None for a
    reviewed or hand-written suite. ``ladder eval`` and its reports show it."""
    if not spec.needs_review:
        return None
    review = (
        spec.path.with_name(f"{spec.path.stem}.review.csv") if spec.path else Path(f"{spec.name}.review.csv")
    )
    return (
        f"suite {spec.name} was generated by a model and no person has reviewed it: some reference answers "
        f"may be wrong; review {review.name}, then run `ladder suite apply-review {review}`"
    )


def suite_review_note(path: str | Path) -> str | None:
    """``review_note`` of the suite at ``path``; None when it cannot be read (a report of an old
    run whose suite file has gone)."""
    try:
        return review_note(load_suite_spec(path))
    except (SuiteError, OSError):
        return None


# ---- a data file where a suite YAML is expected ------------------------------------------------
def data_file_spec(path: str | Path) -> SuiteSpec:
    """The suite a bare data file stands for: named after the file, its kind inferred from the
    first record (``user_input`` → qa, ``question`` + ``options`` → mcq), default metrics."""
    path = Path(path)
    return SuiteSpec(
        name=path.stem, kind=data_file_kind(path), data=[path], path=path,
        description=f"the data file {path.name}, run without a suite YAML",
    )  # fmt: skip


def suite_yaml_for(data: str | Path, spec_path: str | Path) -> str:
    """The text of a suite YAML, to be written at ``spec_path``, for a data file (kind inferred)."""
    import os

    spec = data_file_spec(data)
    relative = os.path.relpath(Path(data).resolve(), Path(spec_path).resolve().parent)
    body = {"name": spec.name, "kind": spec.kind, "data": Path(relative).as_posix(), "metrics": spec.metrics}
    return (
        f"# Suite for {Path(data).name}. Keys: name, kind (qa | mcq), data (relative to this file),\n"
        '# metrics, thresholds ({metric: minimum}), prompt ("{question}" ...), k_shot + dev.\n'
        "# `ladder suite validate` checks it, `ladder eval` runs it.\n"
        + yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    )


def _refuse_json_array(path: Path, text: str) -> None:
    """A ``.json`` file may be a suite written as JSON (JSON is YAML); an array is data."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return
    if isinstance(value, list):
        raise SuiteError(
            "a JSON array is data, not a suite, and data files are .jsonl (one JSON object per line) or .csv",
            file=path,
            hint=f"write one object per line to {path.with_suffix('.jsonl').name}, then run `ladder eval` "
            f"on it; {WHAT_A_SUITE_IS}",
        )


def _load_spec(path: Path) -> tuple[SuiteSpec, dict[tuple[Any, ...], int]]:
    if is_data_file(path):
        spec = data_file_spec(path)
        suite_metrics(spec.kind, spec.metrics, spec.thresholds, spec.path)
        return spec, {}
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise SuiteError("suite file not found", file=path) from None
    if path.suffix.lower() == ".json":
        _refuse_json_array(path, text)
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SuiteError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", file=path, line=line, column=column
        ) from None
    if not isinstance(data, dict):
        raise SuiteError(
            "a suite file is a YAML mapping (name, kind, data, ...)", file=path, line=1, hint=WHAT_A_SUITE_IS
        )
    lines = _key_lines(root) if root is not None else {}
    known = {f.name for f in dataclasses.fields(SuiteSpec)} - {"path"}
    for key in data:
        if key not in known:
            raise SuiteError(
                f"unknown key {key!r}",
                file=path,
                line=lines.get((key,)),
                hint=f"known keys: {', '.join(sorted(known))}",
            )
    for key in ("name", "kind", "data"):
        if key not in data:
            raise SuiteError(f"missing required key {key!r}", file=path, line=1)
    values = dict(data)
    base = path.parent
    for key in ("data", "dev"):
        entries = _as_list(values.get(key))
        if not all(isinstance(e, str) for e in entries):
            raise SuiteError(f"{key} must be a path or a list of paths", file=path, line=lines.get((key,)))
        values[key] = [base / e for e in entries]
    for key in ("subjects", "metrics"):
        if key in values and values[key] is not None and not isinstance(values[key], list):
            raise SuiteError(f"{key} must be a list", file=path, line=lines.get((key,)))
    thresholds = values.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise SuiteError(
            "thresholds must be a mapping of metric: number", file=path, line=lines.get(("thresholds",))
        )
    values["thresholds"] = thresholds
    try:
        spec = SuiteSpec(**values, path=path)
    except _SpecValueError as exc:
        raise SuiteError(str(exc), file=path, line=lines.get((exc.key,)), hint=exc.hint) from None
    except TypeError as exc:
        raise SuiteError(str(exc), file=path) from None
    # Names, options, kinds and thresholds are checked here, before any data is read.
    suite_metrics(spec.kind, spec.metrics, spec.thresholds, spec.path, lines)
    return spec, lines


# ---- prompts ------------------------------------------------------------------------------------
def render_prompt(template: str, item: SuiteItem) -> str:
    """Fill ``{question}`` (and ``{options}`` for MCQ) by replacement, so other braces stay as written."""
    options = options_block(item.question.choices) if item.question.choices else ""
    return template.replace("{question}", item.question.user_input).replace("{options}", options)


# ---- loading -------------------------------------------------------------------------------------
def load_suite(path: str | Path) -> Suite:
    """Read and validate the spec, load every item and render its prompt."""
    spec, lines = _load_spec(Path(path))
    metrics = suite_metrics(spec.kind, spec.metrics, spec.thresholds, spec.path, lines)
    items = _load_exam_tree(spec, lines) if spec.is_exam_tree else _load_files(spec)
    if not items:
        raise SuiteError(
            "the suite has no items",
            file=spec.path,
            line=lines.get(("data",)),
            hint="check the data paths, split and subjects",
        )
    return Suite(spec, items, metrics)


def _load_files(spec: SuiteSpec) -> list[SuiteItem]:
    reader = load_qa if spec.kind == "qa" else load_mcq_jsonl
    ids = ItemIds()
    items = [item for data in spec.data for item in reader(data, ids)]
    exemplars = [item for dev in spec.dev for item in reader(dev, ItemIds())][: spec.k_shot]
    if len(exemplars) < spec.k_shot:
        raise SuiteError(
            f"k_shot is {spec.k_shot} but the dev file(s) hold {len(exemplars)} items",
            file=spec.path,
            hint="lower k_shot or add exemplars",
        )
    template = spec.prompt_template()
    shots = "".join(f"{render_prompt(template, e)} {_exemplar_answer(e)}\n\n" for e in exemplars)
    for item in items:
        item.prompt = shots + render_prompt(template, item)
    return items


def _exemplar_answer(item: SuiteItem) -> str:
    answer = item.reference_letter or item.question.reference
    if answer is None:
        # item.source is already "file:line".
        raise SuiteError(
            "a k-shot exemplar has no answer", file=item.source, hint="dev items need a reference or label"
        )
    return answer


def _load_exam_tree(spec: SuiteSpec, lines: dict[tuple[Any, ...], int]) -> list[SuiteItem]:
    for subject, info in spec.subject_info.items():
        register_subject(subject, info["name_zh"], info["category"])
    layout: ExamLayout = spec.format  # type: ignore[assignment]
    tree = ExamTree(
        roots=tuple(spec.data),
        layout=layout,
        split=spec.split,
        subjects=tuple(spec.subjects) if spec.subjects is not None else None,
        k_shot=spec.k_shot,
        chain_of_thought=spec.chain_of_thought,
        spec_file=spec.path,
        subjects_line=lines.get(("subjects",)),
    )
    return tree.items()

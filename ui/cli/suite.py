"""``ladder suite``: list the built-in suites, write a suite YAML for a data file, generate a QA
suite from a knowledge base, apply its review, validate a suite.

Registered in ``ui.cli.app`` as ``app.add_typer(suite_app, name="suite")``. Importing
this module imports nothing heavy: the knowledge base, the model and the evaluation code
load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from ui.cli.common import Col, ConfigOpt, HomeOpt, ThreadsOpt, fitted_table

if TYPE_CHECKING:
    from evaluation.generate.engine import GenerationReport

suite_app = typer.Typer(
    help="Evaluation suites: list the built-in ones, write one for a data file, generate one from a "
    "knowledge base, review it, validate it.",
    no_args_is_help=True,
)


def _settings(config: Path | None, home: Path | None, **flags: Any) -> Settings:
    return load_settings({"home": home, **flags}, config=config)


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def suite_file(argument: Path) -> Path:
    """The suite file a command-line argument names: the path as given, or, for a bare name (no
    folder, no suffix) that is no file here, the built-in suite of that name: an installed
    Ladder has no checkout whose datasets/suites a user could point at."""
    if argument.exists() or argument.suffix or len(argument.parts) != 1:
        return argument
    from assistant.resources import builtin_suites

    builtin = builtin_suites()
    if argument.name in builtin:
        return builtin[argument.name]
    raise ConfigError(
        f"{argument} is neither a file here nor a built-in suite",
        hint=f"built-in suites: {', '.join(builtin)} (`ladder suite list`); or give the path of a suite YAML",
    )


def _rejections(report: GenerationReport) -> Table:
    from evaluation.generate.checks import REASONS

    table = Table(title="rejected replies")
    table.add_column("reason")
    table.add_column("count", justify="right")
    table.add_column("meaning")
    table.add_column("first rejected reply", overflow="fold")
    for reason, count in report.rejected.most_common():
        example = " ".join(report.examples.get(reason, "").split())
        example = example[:120] + ("…" if len(example) > 120 else "")
        table.add_row(reason, str(count), REASONS.get(reason, ""), escape(example))
    return table


@suite_app.command("list")
def suite_list() -> None:
    """The suites shipped with Ladder: run one by name (`ladder eval demo_qa --model fake`)."""
    from assistant.resources import builtin_suites, datasets_dir
    from evaluation.suites.spec import load_suite

    rows = []
    for name, path in builtin_suites().items():
        suite = load_suite(path)
        rows.append([name, suite.spec.kind, str(len(suite)), escape(suite.spec.description)])
    columns = [Col("name", key=True), Col("kind", key=True), Col("items", key=True, justify="right"),
               Col("description", min_width=20)]  # fmt: skip
    console = _out()
    console.print(fitted_table("Built-in suites", columns, rows, console.width))
    console.print(
        f"[dim]files: {escape(str(datasets_dir() / 'suites'))} (copy one to adapt it); "
        "run one: `ladder eval NAME --model MODEL`[/dim]",
        soft_wrap=True,
    )


@suite_app.command("generate")
def suite_generate(
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to write questions about.")],
    n: Annotated[int, typer.Option("--n", help="How many items to generate.")] = 50,
    generator: Annotated[
        str | None,
        typer.Option(
            help="Model that writes the items: pack, folder, openai:<model>@<url> or fake "
            "(default: the `model` setting)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the suite files.")] = Path("suites"),
    name: Annotated[str | None, typer.Option(help="Suite name (default: <kb>_generated).")] = None,
    multi_hop: Annotated[
        float, typer.Option("--multi-hop", help="Share of multi-hop items (two related chunks).")
    ] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed for drawing chunks and for sampled retries.")] = 0,
    max_attempts: Annotated[
        int, typer.Option(help="Model calls per requested item, on average, before giving up.")
    ] = 4,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing suite files.")] = False,
    answer_check: Annotated[
        bool,
        typer.Option(
            "--answer-check/--no-answer-check",
            help="Answer each question again from its chunks only and drop items whose answer does not "
            "follow (one more model call per item).",
        ),
    ] = True,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write questions, reference answers and their source chunks from a knowledge base.

    Writes <out>/<name>.jsonl, <name>.yaml (generated: true, reviewed: false) and
    <name>.review.csv. Every item passed the checks (JSON, language, grounding in its chunks,
    no number contradicting the question, no near-duplicates) and, unless --no-answer-check, the
    second pass (the generator answers the question from its chunks alone and must agree);
    fewer valid items than asked gives a warning with the rejection reasons.
    """
    import dataclasses

    from assistant.knowledge import KnowledgeBase
    from assistant.service import get_backend
    from evaluation.generate.consistency import AnswerCheck
    from evaluation.generate.engine import ensure_chunks, generate_items
    from evaluation.generate.output import check_suite_name, write_suite
    from ui.cli.common import RichProgress, generation_options

    settings = _settings(config, home, threads=threads)
    suite_name = check_suite_name(name or f"{kb}_generated")
    options = generation_options(n, seed, multi_hop, max_attempts, min(settings.batch_size, 8))
    if answer_check:
        options = dataclasses.replace(options, answer_check=AnswerCheck())
    knowledge_base = KnowledgeBase.open(kb, settings)
    ensure_chunks(knowledge_base)
    backend = get_backend(generator or settings.model, settings)
    with RichProgress() as progress:
        report = generate_items(knowledge_base, backend, options, progress, id_prefix=suite_name)
    knowledge_base.close()
    if report.rejected:
        _err().print(_rejections(report))
    if report.short:
        _err().print(
            f"[yellow]warning:[/yellow] {len(report.items)} valid item(s) of {n} asked for, after "
            f"{report.calls} model calls ({sum(report.rejected.values())} replies rejected, reasons above)"
        )
    paths = write_suite(report, out, suite_name, kb, force=force)
    console = _out()
    console.print(
        f"wrote {len(report.items)} items ({report.count('single_hop')} single-hop, "
        f"{report.count('multi_hop')} multi-hop) from {report.chunks_available} chunks with "
        f"{escape(report.model_id)} in {report.seconds:.1f} s"
    )
    if report.answer_calls:
        dropped = sum(1 for _, _, why in report.second_pass if why is not None)
        console.print(
            f"  second pass: {report.answer_calls} questions answered again from their chunks, "
            f"{dropped} dropped (answer did not follow)"
        )
    for label, path in (("suite", paths.spec), ("items", paths.jsonl), ("review", paths.review)):
        console.print(f"  {label:<7}{escape(str(path))}")
    console.print(
        f"[dim]next: review {escape(paths.review.name)} (set keep=no), then "
        f"`ladder suite apply-review {escape(str(paths.review))}`; until then the suite is marked "
        "reviewed: false[/dim]"
    )


@suite_app.command("apply-review")
def suite_apply_review(
    review: Annotated[Path, typer.Argument(help="The <suite>.review.csv file, edited.")],
    jsonl: Annotated[
        Path | None, typer.Option(help="Suite items to change (default: <suite>.jsonl beside the review).")
    ] = None,
) -> None:
    """Drop the items marked keep=no from the suite; apply questions and answers edited in the CSV."""
    from evaluation.generate.output import apply_review

    result = apply_review(review, jsonl)
    _out().print(
        f"{escape(str(result.jsonl))}: kept {result.kept}, dropped {result.dropped}, edited {result.edited}"
    )
    if result.spec is not None:
        _out().print(f"{escape(str(result.spec))}: reviewed: true")
    else:
        _err().print(
            "[yellow]note:[/yellow] no suite YAML beside the review or the data: nothing marked reviewed"
        )
    if result.unknown_ids:
        shown = ", ".join(result.unknown_ids[:5]) + (" …" if len(result.unknown_ids) > 5 else "")
        _err().print(
            f"[yellow]note:[/yellow] {len(result.unknown_ids)} reviewed id(s) are not in the suite "
            f"(removed earlier?): {escape(shown)}"
        )


@suite_app.command("init")
def suite_init(
    data: Annotated[Path, typer.Argument(help="A QA or MCQ data file (.jsonl or .csv).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Suite YAML to write (default: <data>.yaml beside it).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing suite YAML.")] = False,
) -> None:
    """Write a suite YAML for a data file: kind inferred from its fields, default metrics."""
    from evaluation.suites.spec import is_data_file, suite_yaml_for

    if not is_data_file(data):
        raise ConfigError(f"{data} is not a data file", hint="give a .jsonl or .csv file of questions")
    target = out or data.with_suffix(".yaml")
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists", hint="pass --force to overwrite it, or --out elsewhere")
    text = suite_yaml_for(data, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console = _out()
    console.print(f"wrote {escape(str(target))}", soft_wrap=True)
    console.print(f"[dim]next: edit it, then `ladder eval {escape(str(target))}`[/dim]", soft_wrap=True)


@suite_app.command("validate")
def suite_validate(
    suite: Annotated[Path, typer.Argument(help="A suite YAML file, or the name of a built-in suite.")],
) -> None:
    """Load a suite as an evaluation run would; print its size, kind and metrics, or what is wrong."""
    from collections import Counter

    from evaluation.suites.spec import load_suite

    loaded = load_suite(suite_file(suite))
    spec = loaded.spec
    tags = Counter(tag for item in loaded.items for tag in item.question.tags)
    console = _out()
    console.print(
        f"[green]ok[/green] {escape(spec.name)}: {len(loaded)} items, kind {spec.kind}, format {spec.format}"
    )
    console.print(f"  metrics    {escape(', '.join(m.label for m in loaded.metrics))}")
    if spec.thresholds:
        targets = ", ".join(f"{k} >= {v}" for k, v in spec.thresholds.items())
        console.print(f"  thresholds {escape(targets)}")
    with_contexts = sum(1 for i in loaded.items if i.question.reference_contexts)
    if spec.kind == "qa":
        console.print(f"  references {sum(1 for i in loaded.items if i.question.reference)}, "
                      f"with contexts {with_contexts}")  # fmt: skip
    if tags:
        console.print("  tags       " + escape(", ".join(f"{t} {c}" for t, c in tags.most_common(8))))
    if spec.needs_review:
        review = spec.path.with_name(f"{spec.path.stem}.review.csv").name if spec.path else "the review CSV"
        console.print(
            f"  [yellow]reviewed   no[/yellow]: generated and not reviewed; review {escape(review)}, then "
            "`ladder suite apply-review`"
        )
    elif spec.generated:
        console.print(f"  reviewed   yes ({escape(spec.reviewed_at or 'time not recorded')})")


__all__ = ["suite_app", "suite_file"]

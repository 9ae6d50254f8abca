"""``ladder finetune prepare | synthesize``: turn raw files into a training set, or synthesize one
from a knowledge base with a teacher model. Heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ui.cli.common import (
    ConfigOpt,
    HomeOpt,
    RichProgress,
    ThreadsOpt,
    console,
    err_console,
    generation_options,
    settings_from,
)

if TYPE_CHECKING:
    from evaluation.generate.engine import GenerationReport
    from finetune.data.report import DataReport
    from finetune.data.synth import SynthReport


# ---- prepare ------------------------------------------------------------------------------------
def leak_text(leak: dict[str, Any]) -> str:
    """One dropped example: where it came from and the evaluation item it repeats (a paraphrase
    group's other members name the one that matched)."""
    item = f"{escape(str(leak['suite']))} item {escape(str(leak['item']))}"
    if leak["match"] == "group":
        return (
            f"{escape(leak['source'])}: same question as {escape(str(leak.get('via')))}, which matches {item}"
        )
    return f"{escape(leak['source'])}: {leak['match']} match of {item} ({leak['similarity']})"


def _steps_table(report: DataReport) -> Table:
    table = Table(title="data, step by step")
    for column in ("data", "step", "in", "kept", "dropped"):
        table.add_column(column, justify="right" if column in ("in", "kept") else "left")
    for step in report.steps:
        why = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in step.dropped.items())
        table.add_row(step.data, step.step, str(step.before), str(step.after), why or "-")
    return table


def _splits_table(report: DataReport) -> Table:
    table = Table(title="written")
    for column in ("split", "domain", "general", "total"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, counts in report.splits.items():
        table.add_row(f"{name}.jsonl", str(counts["domain"]), str(counts["general"]), str(counts["total"]))
    return table


def _lengths_table(report: DataReport) -> Table:
    lengths = report.lengths
    title = f"length in tokens ({lengths['tokenizer']})"
    if lengths.get("count"):
        title += (
            f": min {lengths['min']}, median {lengths['median']}, mean {lengths['mean']}, "
            f"p95 {lengths['p95']}, max {lengths['max']}"
        )
    table = Table(title=title)
    table.add_column("tokens")
    table.add_column("examples", justify="right")
    table.add_column("")
    top = max((row["count"] for row in lengths["histogram"]), default=1)
    for row in lengths["histogram"]:
        table.add_row(row["bucket"], str(row["count"]), "█" * round(30 * row["count"] / top))
    return table


def _balance_table(report: DataReport) -> Table:
    balance = report.balance
    splits = [name for name in ("train", "val", "test") if name in balance]
    table = Table(title=f"label balance (by {balance['key']})")
    table.add_column(balance["key"])
    for name in splits:
        table.add_column(name, justify="right")
    labels = list(dict.fromkeys(label for name in splits for label in balance[name]))
    for label in labels[:25]:
        table.add_row(escape(label), *(str(balance[name].get(label, 0)) for name in splits))
    if len(labels) > 25:
        table.add_row(f"… {len(labels) - 25} more", *("" for _ in splits))
    return table


def _print_report(report: DataReport) -> None:
    out = console()
    out.print(_steps_table(report))
    data = report.as_dict()
    rates = ", ".join(f"{name} {rate:.1%}" for name, rate in data["duplicates"]["rate"].items())
    out.print(f"duplicate rate: {rates or '-'}")
    if report.pii:
        out.print("PII masked: " + ", ".join(f"{count} {kind}" for kind, count in report.pii.items()))
    suites = ", ".join(f"{s['name']} ({s['items']})" for s in report.suites)
    out.print(f"leakage check against {len(report.suites)} suite(s): {escape(suites) or 'none'}")
    for leak in report.leaks[:10]:
        out.print(f"  [yellow]dropped[/yellow] {leak_text(leak)}")
    if len(report.leaks) > 10:
        out.print(f"  … and {len(report.leaks) - 10} more (report.json lists them all)")
    out.print(_splits_table(report))
    out.print(_lengths_table(report))
    if report.balance:
        out.print(_balance_table(report))


def prepare_cmd(
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder to write train/val/test.jsonl, report.json and manifest.json."),
    ],
    domain: Annotated[
        list[Path],
        typer.Option(
            "--domain", help="Domain data file (repeatable): .jsonl/.json, suite .yaml, .csv, .txt/.md."
        ),
    ],
    general: Annotated[
        str,
        typer.Option(
            help="General instruction data mixed in: 'default' (datasets/general), 'none' or a file."
        ),
    ] = "default",
    ratio: Annotated[
        float,
        typer.Option(
            help="General examples per domain training example (domain:general = 1:RATIO); 0 = none."
        ),
    ] = 5.0,
    data_format: Annotated[
        str,
        typer.Option("--format", help="auto, alpaca, chat (messages or ShareGPT conversations), qa or text."),
    ] = "auto",
    dedup_threshold: Annotated[
        float,
        typer.Option(
            help="Jaccard similarity (character shingles) at which two training examples are "
            "near-duplicates of each other (the leakage check has its own rule: docs/fine-tuning.md)."
        ),
    ] = 0.85,
    mask_pii: Annotated[
        bool,
        typer.Option(
            "--mask-pii", help="Replace phone numbers, ID numbers, bank cards and e-mails with placeholders."
        ),
    ] = False,
    split: Annotated[str, typer.Option(help="train,val,test fractions.")] = "0.8,0.1,0.1",
    stratify_by: Annotated[
        str | None, typer.Option(help="Stratify the split by: label (the reply), tag, tag:PREFIX or source.")
    ] = None,
    min_examples: Annotated[
        int, typer.Option(help="Fewest domain examples left after cleaning, dedup and leakage.")
    ] = 50,
    seed: Annotated[int, typer.Option(help="Seed for the split and the general sample.")] = 0,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="Measure lengths with this local model's tokenizer (pack or folder); "
            "default: a character-based estimate."
        ),
    ] = None,
    min_tokens: Annotated[int, typer.Option(help="Drop shorter examples.")] = 4,
    max_tokens: Annotated[int, typer.Option(help="Drop longer examples.")] = 2048,
    suite: Annotated[
        list[Path] | None,
        typer.Option(
            "--suite",
            help="Another evaluation suite to check for leakage (repeatable); "
            "datasets/suites/*.yaml are always checked. An example whose user turn repeats a question "
            "(exactly, normalised, or a near duplicate: one edit, a reordered clause) is dropped.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out folder.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Clean, deduplicate, leakage-check, split and mix training data into --out.

    Nothing is written unless every check passes: bad lines, missing fields, too few
    examples and too little general data are errors naming the file and line or the counts.
    """
    from evaluation.suites.source import SuiteFiles
    from finetune.data.prepare import PrepareConfig, prepare
    from finetune.data.split import SplitFractions

    settings = settings_from(config, home)
    options = PrepareConfig(
        domain=tuple(domain),
        out=out,
        general=general,
        ratio=ratio,
        format=data_format,
        dedup_threshold=dedup_threshold,
        mask_pii=mask_pii,
        split=SplitFractions.parse(split),
        stratify_by=stratify_by,
        min_examples=min_examples,
        seed=seed,
        tokenizer=tokenizer,
        min_tokens=min_tokens,
        max_tokens=max_tokens,
        suites=tuple(suite or ()),
        force=force,
    )
    with RichProgress() as progress:
        result = prepare(options, settings, progress, suites=SuiteFiles())
    _print_report(result.report)
    console().print(
        f"[green]wrote[/green] {escape(str(result.out))}: train {result.counts['train']}, "
        f"val {result.counts['val']}, test {result.counts['test']} · report.json · manifest.json "
        f"(data hash {result.manifest['data_hash'][:12]})"
    )


# ---- synthesize ---------------------------------------------------------------------------------
def _print_synth(report: SynthReport[GenerationReport], out: Path) -> None:
    from evaluation.generate.checks import REASONS
    from finetune.data.synth import PARAPHRASE_REASONS

    generation = report.generation
    table = Table(title="rejected teacher replies")
    for column in ("stage", "reason", "count", "meaning"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for reason, count in generation.rejected.most_common():
        table.add_row("pair", reason, str(count), REASONS.get(reason, ""))
    for reason, count in report.paraphrase_rejected.most_common():
        table.add_row("paraphrase", reason, str(count), PARAPHRASE_REASONS.get(reason, ""))
    if table.row_count:
        err_console().print(table)
    if generation.short:
        err_console().print(
            f"[yellow]warning:[/yellow] {len(generation.items)} valid pair(s) of "
            f"{generation.requested} asked for after {generation.calls} teacher calls"
        )
    for leak in report.leaks[:10]:
        err_console().print(f"  [yellow]dropped[/yellow] {leak_text(leak)}")
    console().print(
        f"[green]wrote[/green] {len(report.rows)} examples to {escape(str(out))}: {len(generation.items)} "
        f"pairs + {report.paraphrases} paraphrases from {escape(generation.model_id)} "
        f"({generation.calls + report.paraphrase_calls} calls), {len(report.duplicates)} duplicates and "
        f"{len(report.leaks)} evaluation leaks dropped"
    )
    console().print(f"[dim]next: `ladder finetune prepare --domain {escape(str(out))} --out DIR`[/dim]")


def synthesize_cmd(
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base the pairs are grounded in.")],
    out: Annotated[
        Path, typer.Option("--out", help="JSONL file to write (Alpaca format, tagged synthetic).")
    ],
    teacher: Annotated[
        str | None,
        typer.Option(
            help="Teacher model: pack, folder, openai:<model>@<url> or fake (default: the `model` setting)."
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="How many question/answer pairs to generate.")] = 50,
    paraphrase: Annotated[
        int, typer.Option(help="Paraphrases of each question to ask the teacher for (0 = none).")
    ] = 0,
    multi_hop: Annotated[
        float, typer.Option("--multi-hop", help="Share of pairs that combine two related chunks.")
    ] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed for drawing chunks and for sampling.")] = 0,
    max_attempts: Annotated[
        int, typer.Option(help="Teacher calls per requested pair, on average, before giving up.")
    ] = 4,
    dedup_threshold: Annotated[
        float, typer.Option(help="Near-duplicate Jaccard threshold between synthetic examples.")
    ] = 0.85,
    suite: Annotated[
        list[Path] | None,
        typer.Option(
            "--suite",
            help="Another evaluation suite to check for leakage (repeatable); datasets/suites/*.yaml "
            "are always checked. A question that repeats an item goes with all its paraphrases.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out.")] = False,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write instruction/answer pairs grounded in a knowledge base, written by a teacher model."""
    from assistant.errors import ConfigError
    from assistant.knowledge import KnowledgeBase
    from assistant.service import get_backend
    from evaluation.generate.engine import ensure_chunks, generate_items
    from evaluation.suites.source import SuiteFiles
    from finetune.data.synth import SynthConfig, synthesize, write_rows

    settings = settings_from(config, home, threads=threads)
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists", hint="pass --force to overwrite it")
    batch_size = min(settings.batch_size, 8)
    options = SynthConfig(
        paraphrase=paraphrase,
        seed=seed,
        batch_size=batch_size,
        dedup_threshold=dedup_threshold,
        suites=tuple(suite or ()),
    )
    generation = generation_options(n, seed, multi_hop, max_attempts, batch_size)
    with KnowledgeBase.open(kb, settings) as knowledge_base:
        ensure_chunks(knowledge_base)
        backend = get_backend(teacher or settings.model, settings)
        with RichProgress() as progress:
            report = synthesize(
                knowledge_base,
                backend,
                options,
                progress,
                generate=lambda shown: generate_items(
                    knowledge_base, backend, generation, shown, id_prefix="synth"
                ),
                suites=SuiteFiles(),
            )
    write_rows(report.rows, out, force=force)
    _print_synth(report, out)

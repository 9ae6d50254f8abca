"""``ladder finetune train | list | info | rm | export``, added to ``finetune_app``.

Exit codes of ``train``: 0 when the adapter is published, 1 when the loss monitor stopped a
diverging run (nothing published), 2 for bad data, flags or names (nothing written; DPO pairs
that all repeat evaluation questions too), 3 for an unknown or missing base model. Heavy
imports happen inside the commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from assistant.errors import ConfigError, LadderError
from ui.cli.common import (
    Col,
    ConfigOpt,
    HomeOpt,
    RichProgress,
    console,
    err_console,
    fitted_table,
    human_size,
    settings_from,
)


class TrainProgressBar(RichProgress):
    """``RichProgress`` plus live training metrics after the step count: loss, val loss,
    learning rate and tokens/s (on a terminal live, in a log with each periodic line)."""

    def __init__(self) -> None:
        super().__init__(eta=True)
        self._val: float | None = None
        self._metrics_text = ""

    def _info(self) -> str:
        return self._metrics_text

    def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
        super().start(stage, total, unit)
        self._metrics_text = ""

    def metrics(self, step: int, total: int, values: dict[str, float]) -> None:
        self._val = values.get("val_loss", self._val)
        val = f"  val {self._val:.4f}" if self._val is not None else ""
        speed = f"{values['tokens_per_s']:,.0f} tok/s"
        self._metrics_text = f"loss {values['train_loss']:.4f}{val}  lr {values['lr']:.2e}  {speed}"
        self._refresh()


def loss_change(
    series: Sequence[tuple[int, float]], first: float | None = None, last: float | None = None
) -> str:
    """``3.6000 → 2.6000 (mean of steps 1-6 → 25-30)``: like with like, the mean of the first k
    logged steps against the mean of the last k (k = a fifth of the steps, 1 to 10), so one
    noisy step at either end does not read as the trend. Without a series (an old run), the
    first and the last step, labelled as such."""
    if not series:
        if first is None or last is None:
            return "n/a"
        return f"{first:.4f} → {last:.4f} (first step → last step)"
    k = max(1, min(10, len(series) // 5))
    head, tail = series[:k], series[-k:]
    start = sum(value for _, value in head) / k
    end = sum(value for _, value in tail) / k
    if k == 1:
        return f"{start:.4f} → {end:.4f} (step {head[0][0]} → step {tail[0][0]})"
    return f"{start:.4f} → {end:.4f} (mean of steps {head[0][0]}-{head[-1][0]} → {tail[0][0]}-{tail[-1][0]})"


def _train_loss_line(settings: Any, manifest: dict[str, Any]) -> str:
    """The loss change of a finished run, from the per-step series it logged in ``ladder.db``."""
    from finetune.store import TrainingStore

    res = manifest["results"]
    series: list[tuple[int, float]] = []
    if manifest.get("run_id"):
        with TrainingStore(settings.db_path) as store:
            series = store.series(str(manifest["run_id"]), "train_loss")
    last = res.get("last_train_loss", res.get("train_loss"))
    return "train loss " + loss_change(series, res.get("first_train_loss"), last)


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def train_cmd(
    name: Annotated[str, typer.Option("--name", help="Adapter name (LADDER_HOME/adapters/<name>).")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Prepared data folder (train.jsonl, val.jsonl) or a JSONL file."),
    ] = None,
    base: Annotated[str | None, typer.Option("--base", help="Base model: pack name or folder.")] = None,
    mode: Annotated[str, typer.Option(help="sft (chat, loss on replies) or cpt (raw text).")] = "sft",
    method: Annotated[
        str, typer.Option(help="sft (supervised, see --mode) or dpo (preference pairs, see --beta).")
    ] = "sft",
    beta: Annotated[float, typer.Option(help="DPO: how far the adapter may move from the base.")] = 0.1,
    peft: Annotated[
        str,
        typer.Option(
            "--peft",
            help="What is trained: lora (default), prompt-tuning, last-layers (LoRA on the last "
            "layers) or full (every weight).",
        ),
    ] = "lora",
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 32,
    dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.05,
    target_modules: Annotated[str, typer.Option(help="all-linear or names: q_proj,v_proj")] = "all-linear",
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", help="Peak learning rate (default by --peft: 2e-4 LoRA, 3e-2 prompt-tuning, 5e-5 full)."
        ),
    ] = None,
    last_layers: Annotated[
        int | None,
        typer.Option(
            "--last-layers", help="--peft last-layers: how many of the last layers (default a quarter)."
        ),
    ] = None,
    virtual_tokens: Annotated[
        int, typer.Option("--virtual-tokens", help="--peft prompt-tuning: virtual tokens before each input.")
    ] = 20,
    warmup: Annotated[float, typer.Option(help="Warmup, as a fraction of the steps.")] = 0.05,
    epochs: Annotated[float | None, typer.Option(help="Epochs (default 3 for sft, 1 for cpt).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per micro-batch.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    max_seq_len: Annotated[int, typer.Option(help="Longest example, in tokens.")] = 1024,
    batching: Annotated[
        str, typer.Option(help="packed (no padding), grouped (by length) or padded.")
    ] = "packed",
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed: LoRA init, data order, dropout.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps (0: none).")] = 50,
    eval_every: Annotated[
        int | None, typer.Option(help="Val loss every N steps (default: 10 per run).")
    ] = None,
    patience: Annotated[
        int, typer.Option(help="Evaluations without improvement before stopping (0: never).")
    ] = 3,
    min_examples: Annotated[int, typer.Option(help="Fewest training examples accepted.")] = 50,
    suite: Annotated[
        list[Path] | None,
        typer.Option(
            "--suite",
            help="Another evaluation suite the training data must not repeat (repeatable; "
            "datasets/suites/*.yaml are always checked): SFT data with such an example is refused, "
            "DPO pairs with one are dropped and counted.",
        ),
    ] = None,
    gradient_checkpointing: Annotated[bool, typer.Option(help="Trade compute for memory.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an adapter of that name.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the unfinished run of --name (its own settings).")
    ] = False,
    keep_checkpoints: Annotated[bool, typer.Option(help="Keep the work folder after success.")] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads (shared among --processes).")] = None,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            help="Train in N local processes (DDP: gloo on CPU, nccl with one GPU each); the same "
            "global batch, so the same steps as one process.",
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Train a LoRA adapter (SFT on chat data, continued pre-training on text, or DPO on preference
    pairs) and register it."""
    if method not in ("sft", "dpo"):
        raise ConfigError(f"unknown --method {method!r}", hint="use sft or dpo")
    if method == "dpo" and peft != "lora":
        raise ConfigError("--method dpo trains LoRA only", hint="leave out --peft")
    if processes < 1:
        raise ConfigError(f"--processes must be >= 1, got {processes}")
    if method == "dpo" and processes > 1:
        raise ConfigError("--method dpo trains in one process", hint="leave out --processes")
    if method == "dpo":
        from finetune.train.dpo import DPOSettings

        dpo = DPOSettings(
            beta=beta, rank=rank, alpha=alpha, dropout=dropout, target_modules=target_modules,
            learning_rate=lr or 2e-4, epochs=epochs or 3.0, max_steps=max_steps, batch_size=batch_size,
            grad_accum=grad_accum, max_length=max_seq_len, seed=seed, min_pairs=min_examples,
        )  # fmt: skip
        _train_dpo(name, data, base, dpo, overwrite, threads, as_json, config, home, tuple(suite or ()))
        return
    from finetune.train import distributed
    from finetune.train.config import DEFAULT_LEARNING_RATE, TrainConfig
    from finetune.train.run import TrainRequest, run_training
    from finetune.train.run import prepare as prepare_training

    settings = settings_from(config, home, threads=threads)
    train_config = TrainConfig(
        mode=mode,
        peft=peft,
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        target_modules=target_modules,
        last_layers=last_layers,
        num_virtual_tokens=virtual_tokens,
        learning_rate=lr if lr is not None else DEFAULT_LEARNING_RATE.get(peft, 2e-4),
        warmup_ratio=warmup,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_seq_len=max_seq_len,
        batching=batching,
        weight_decay=weight_decay,
        seed=seed,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        patience=patience,
        min_examples=min_examples,
        gradient_checkpointing=gradient_checkpointing,
    )
    request = TrainRequest(
        base or settings.model,
        data,
        name,
        train_config,
        overwrite=overwrite,
        resume=resume,
        keep_checkpoints=keep_checkpoints,
    )
    prepared = prepare_training(request, settings)
    if data is not None and not resume:
        _refuse_sft_leaks(data, tuple(suite or ()))
    if processes > 1 and not distributed.launched():
        # checked above in this process; now N copies of this very command, found by each other
        # through the torchrun variables (as under torchrun or accelerate launch)
        share = distributed.threads_per_process(settings.threads, processes)
        code = distributed.launch(distributed.cli_command(sys.argv[1:]), processes, threads=share)
        raise typer.Exit(code)
    if distributed.rank_from_env() != 0:  # a process other than the main one: trains, prints nothing
        try:
            run_training(prepared, settings)
        except LadderError as exc:  # the main process says what went wrong
            raise typer.Exit(exc.exit_code) from None
        return
    if resume:
        err_console().print("[dim]resuming with the settings the run started with[/dim]")
    try:
        with TrainProgressBar() as progress:
            result = run_training(prepared, settings, progress=progress)
    except KeyboardInterrupt:
        hint = f"continue with `ladder finetune train --name {name} --resume`"
        err_console().print(f"[yellow]stopped: {escape(hint)}[/yellow]")
        raise
    if as_json:
        print(json.dumps(result.manifest, ensure_ascii=False, default=str))
        return
    res = result.manifest["results"]
    out = console()
    out.print(f"[green]trained[/green] {escape(name)} → {escape(str(result.path))}")
    out.print(
        f"{res['status']} after {res['steps']} steps ({res['epochs']} epochs) · "
        f"{_train_loss_line(settings, result.manifest)} · "
        f"val loss {_fmt(res['first_val_loss'])} → "
        f"{_fmt(res['val_loss'])} (step {res['best_step']}) · {_fmt(res['tokens_per_s'], 0)} tok/s · "
        f"{result.manifest['wall_time_s']:.1f} s on {result.manifest['device']}"
    )
    if res["monitor"]["verdict"]:
        out.print(f"[dim]loss curve: {escape(str(res['monitor']['message']))}[/dim]")
    out.print(f"[dim]use it: --model {escape(result.manifest['base_model']['ref'])}+{escape(name)}[/dim]")


def _refuse_sft_leaks(data: Path, suites: tuple[Path, ...]) -> None:
    """Refuse SFT data with an example that repeats an evaluation question (the shipped suites and
    ``suites``): a JSONL file trained as it is skips ``finetune prepare``, which would drop it."""
    from assistant.leakage import load_eval_questions
    from evaluation.suites.source import SuiteFiles
    from finetune.data.dedup import LeakageChecker
    from finetune.data.load import Example
    from finetune.train.data import locate_data, read_records

    questions, _ = load_eval_questions(SuiteFiles(), suites)
    records = read_records(locate_data(data).train_file)
    examples = [Example(messages=[dict(m) for m in r.messages], text=r.text, source=r.where) for r in records]
    _, leaks = LeakageChecker(questions).split(examples)
    if leaks:
        first = leaks[0]
        raise ConfigError(
            f"refused: {len(leaks)} training example(s) repeat evaluation questions (first: "
            f"{first['source']} ~ {first['suite']} {first['item']}, {first['match']}); a model trained "
            "on them would be scored on what it was taught",
            hint="drop them: ladder finetune prepare --domain FILE --suite SUITE.yaml --out DIR",
        )


def _leak_lines(data: dict[str, Any]) -> list[str]:
    """What the leakage check dropped from the pairs, for the summary."""
    leaks = data.get("leaks") or []
    if not leaks:
        checked = ", ".join(data.get("leakage_checked") or []) or "none"
        return [
            f"[dim]leakage check: no pair repeats an evaluation question (suites: {escape(checked)})[/dim]"
        ]
    lines = [
        f"[yellow]dropped {len(leaks)} of {data.get('pairs_in_file')} pair(s)[/yellow] whose question "
        "repeats an evaluation item (a model is never trained on what it is tested on):"
    ]
    for leak in leaks[:10]:
        lines.append(
            f"  {escape(str(leak['source']))}: {leak['match']} match of {escape(str(leak['suite']))} "
            f"item {escape(str(leak['item']))} ({leak['similarity']})"
        )
    if len(leaks) > 10:
        lines.append(f"  … and {len(leaks) - 10} more (the adapter manifest lists them all)")
    return lines


def _train_dpo(
    name: str, data: Path | None, base: str | None, dpo: Any, overwrite: bool, threads: int | None,
    as_json: bool, config: Path | None, home: Path | None, suites: tuple[Path, ...] = (),
) -> None:  # fmt: skip
    from evaluation.suites.source import SuiteFiles
    from finetune.train.dpo import DPORequest, train_dpo

    if data is None:
        raise ConfigError(
            "DPO needs preference pairs", hint="pass --data pairs.jsonl (ladder feedback promote)"
        )
    settings = settings_from(config, home, threads=threads)
    request = DPORequest(base or settings.model, data, name, dpo, overwrite=overwrite, suites=suites)
    with TrainProgressBar() as progress:
        result = train_dpo(request, settings, progress=progress, suites=SuiteFiles())
    if as_json:
        print(json.dumps(result.manifest, ensure_ascii=False, default=str))
        return
    res = result.manifest["results"]
    for line in _leak_lines(result.manifest.get("data", {})):
        console().print(line)
    console().print(
        f"[green]trained[/green] {escape(name)} (DPO, beta {dpo.beta}) → {escape(str(result.path))}\n"
        f"{res['steps']} steps · {_train_loss_line(settings, result.manifest)} · "
        f"chosen − rejected log-prob margin {_fmt(res['margin_before'], 2)} → {_fmt(res['margin_after'], 2)}"
    )
    console().print(
        f"[dim]use it: --model {escape(result.manifest['base_model']['ref'])}+{escape(name)}[/dim]"
    )


def list_cmd(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Registered adapters, newest first."""
    from finetune.adapters import list_adapters, method_of

    settings = settings_from(config, home)
    rows = list_adapters(settings)
    if not rows:
        console().print("no adapters yet: `ladder finetune train --base MODEL --data DIR --name NAME`")
        return
    table_rows = []
    for m in rows:
        res = m.get("results", {})
        table_rows.append([
            escape(m["name"]), escape(str(m.get("base_model", {}).get("ref", "?"))),
            f"{m.get('mode', '?')} · {method_of(m)}",
            str(res.get("steps", "-")), _fmt(res.get("train_loss")), _fmt(res.get("val_loss")),
            str(m.get("created", "-")), human_size(m["size_bytes"]),
        ])  # fmt: skip
    columns = [Col("name", key=True), Col("base", drop=3, min_width=16), Col("mode", key=True),
               Col("steps", drop=4, justify="right"), Col("train loss", drop=2),
               Col("val loss", drop=1), Col("created", drop=6, key=True), Col("size", drop=5)]  # fmt: skip
    out = console()
    table = fitted_table("Adapters", columns, table_rows, out.width)
    out.print(table)


def info_cmd(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """An adapter's manifest: base model, data, hyperparameters, results, evaluations."""
    from finetune.adapters import adapter_dir, read_manifest

    settings = settings_from(config, home)
    manifest = read_manifest(name, settings)
    if as_json:
        print(json.dumps(manifest, ensure_ascii=False, default=str))
        return
    out = console()
    base, data, res = manifest.get("base_model", {}), manifest.get("data", {}), manifest.get("results", {})
    out.print(f"[bold]{escape(name)}[/bold]  {escape(str(adapter_dir(name, settings)))}")
    out.print(
        f"base      {escape(str(base.get('ref')))} ({base.get('kind')}, hash {str(base.get('hash'))[:16]})"
    )
    out.print(
        f"data      {escape(str(data.get('path')))} (hash {str(data.get('data_hash'))[:16]}, "
        f"{data.get('train_examples')} train / {data.get('val_examples')} val examples)"
    )
    out.print(f"method    {_method_line(manifest)}", markup=False)
    hp = manifest.get("hyperparameters", {})
    out.print("settings  " + ", ".join(f"{k}={v}" for k, v in hp.items()), markup=False)
    out.print(
        f"results   {res.get('status')}, {res.get('steps')} steps, {_train_loss_line(settings, manifest)}, "
        f"val loss {_fmt(res.get('val_loss'))} (step {res.get('best_step')})"
    )
    out.print(
        f"run       {manifest.get('wall_time_s', 0):.1f} s on {manifest.get('device')} "
        f"({manifest.get('dtype')}), {_fmt(res.get('tokens_per_s'), 0)} tok/s"
    )
    for evaluation in manifest.get("evaluations", []):
        out.print(f"eval      {json.dumps(evaluation, ensure_ascii=False, default=str)}", markup=False)


def _method_line(manifest: dict[str, Any]) -> str:
    """``last-layers (layers 22-29 of 30), 1,228,800 of 135,743,808 weights trained (0.91%)``."""
    from finetune.adapters import method_of

    peft = manifest.get("peft") or {}
    text = method_of(manifest)
    if peft.get("layers"):
        text += f" (layers {peft['layers'][0]}-{peft['layers'][-1]} of {peft.get('of_layers')})"
    elif peft.get("num_virtual_tokens"):
        text += f" ({peft['num_virtual_tokens']} virtual tokens)"
    trainable, total = peft.get("trainable_parameters"), peft.get("total_parameters")
    if trainable and total:
        text += f", {trainable:,} of {total:,} weights trained ({trainable / total:.2%})"
    return text


def rm_cmd(name: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Delete an adapter (and any unfinished training of that name)."""
    from assistant.errors import ModelNotFoundError
    from finetune.adapters import remove_adapter

    settings = settings_from(config, home)
    if not remove_adapter(name, settings):
        raise ModelNotFoundError(f"no adapter named {name!r}", hint="see `ladder finetune list`")
    console().print(f"removed {escape(name)}")


def export_cmd(
    name: str,
    out: Annotated[Path, typer.Option("--out", help="Folder to write.")],
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="merged (the adapter merged into its base: a standalone transformers folder) or peft "
            "(a portable adapter folder naming its base by model id, for vLLM --enable-lora).",
        ),
    ] = "merged",
    base_id: Annotated[
        str | None,
        typer.Option("--base-id", help="peft: the base's model id (default: the pack's upstream model)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Export an adapter for other engines: merged into its base (default) or as a PEFT folder."""
    from finetune.adapters import export_adapter, vllm_command

    settings = settings_from(config, home)
    with RichProgress() as progress:
        path = export_adapter(
            name,
            out,
            settings,
            export_format=export_format,
            base_id=base_id,
            overwrite=overwrite,
            progress=progress,
        )
    printer = console()
    printer.print(f"[green]exported[/green] {escape(name)} ({export_format}) → {escape(str(path))}")
    if export_format == "merged":
        printer.print(f"use it: --model {path}", markup=False)
    command = vllm_command(name, path, export_format)
    if command is None:
        printer.print("vLLM serves LoRA adapters only: load this prompt-tuning folder with peft's PeftModel")
    else:
        printer.print("serve it on vLLM:", command, sep="\n", markup=False, soft_wrap=True)


def register_training(app: typer.Typer) -> None:
    """Add the training and adapter commands to the ``ladder finetune`` app."""
    app.command("train")(train_cmd)
    app.command("list")(list_cmd)
    app.command("info")(info_cmd)
    app.command("rm")(rm_cmd)
    app.command("export")(export_cmd)

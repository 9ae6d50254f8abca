"""``ladder ask``: one question through one strategy, printed with citations, tokens and latency."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from ui.cli.common import ConfigOpt, HomeOpt, ThreadsOpt, console, err_console, settings_from


def ask_cmd(
    question: Annotated[str, typer.Argument(help="The question to ask.")],
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            "-s",
            help="prompt, fewshot, reflection, rag, agent, route, delegate, or a YAML config.",
        ),
    ] = "prompt",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Pack name, model folder, openai:<model>@<url> or fake."),
    ] = None,
    kb: Annotated[str | None, typer.Option(help="Knowledge base for rag / agent.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most new tokens to generate.")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 = greedy (the default).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling.")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop sequence (repeatable).")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Show the intermediate steps.")] = False,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Ask one question with a strategy; print the answer, citations, tokens, latency and model."""
    from dataclasses import asdict

    from assistant.service import answer_questions
    from assistant.types import Question

    settings = settings_from(config, home, threads=threads)
    overrides: dict[str, Any] = {
        "model": model, "kb": kb, "system_prompt": system, "max_new_tokens": max_tokens,
        "temperature": temperature, "seed": seed, "stop": list(stop) if stop else None,
    }  # fmt: skip
    with err_console().status(f"asking ({strategy}) …", spinner="dots"):
        answer = answer_questions(
            [Question(question)], strategy, settings=settings, log_source="cli", **overrides
        )[0]
    if as_json:
        print(json.dumps({
            "question": question, "answer": answer.response, "model": answer.model_id, "strategy": strategy,
            "prompt_tokens": answer.usage.prompt_tokens, "completion_tokens": answer.usage.completion_tokens,
            "model_calls": answer.usage.model_calls, "latency_s": round(answer.latency_s, 3),
            "prompt_truncated": answer.prompt_truncated,
            "citations": [asdict(c) for c in answer.citations],
            "retrieved_contexts": answer.retrieved_contexts,
            "trace": [asdict(step) for step in answer.trace.steps],
        }, ensure_ascii=False, default=str))  # fmt: skip
        return
    out = console()
    out.print(answer.response, markup=False)
    for citation in answer.citations:
        page = f", page {citation.page}" if citation.page is not None else ""
        snippet = " ".join(citation.text.split())[:100]
        where = f"{escape(citation.source)}{page} (chunk {citation.chunk})"
        out.print(f"[cyan][{citation.number}][/cyan] {where}: [dim]{escape(snippet)}…[/dim]")
    if trace:
        for number, step in enumerate(answer.trace.steps, start=1):
            detail = json.dumps(step.detail, ensure_ascii=False, default=str)
            out.print(f"[magenta]{number:>2}. {step.kind}[/magenta] {escape(detail[:600])}")
    out.print(
        f"[dim]{strategy} · model {escape(answer.model_id)} · {answer.usage.model_calls} call(s) · "
        f"{answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} completion tokens · "
        f"{answer.latency_s:.2f} s[/dim]"
    )
    if answer.prompt_truncated:
        err_console().print("[yellow]warning: the prompt was truncated to fit the context window[/yellow]")

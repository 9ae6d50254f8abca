"""``ladder models``: the model packs (LLMs and embedders carried in PyPI wheels): list, pull, info, rm."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ui.cli.common import ConfigOpt, HomeOpt, RichProgress, console, human_size, settings_from

models_app = typer.Typer(
    help="Model packs: LLMs and text embedders carried in PyPI wheels.", no_args_is_help=True
)


@models_app.command("list")
def models_list(config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Known packs and whether each is installed."""
    from assistant.models.catalog import load_catalog
    from assistant.models.pull import installed_pack_dir

    settings = settings_from(config, home)
    table = Table(title="Model packs")
    table.add_column("name", no_wrap=True)
    for column in ("kind", "installed", "size (file)", "languages", "licence"):
        table.add_column(column)
    for spec in load_catalog(settings.catalog_file).values():
        installed = "yes" if installed_pack_dir(spec.name, settings) else "-"
        default = " (default)" if spec.name == settings.model else ""
        table.add_row(spec.name + default, spec.kind, installed, human_size(spec.size_bytes),
                      ",".join(spec.languages), spec.license)  # fmt: skip
    console().print(table)
    console().print("[dim]`ladder models info NAME` for details, `ladder models pull NAME` to install[/dim]")


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="Pack name (see `ladder models list`).")],
    force: Annotated[bool, typer.Option(help="Pull again even if installed.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Download, verify and convert a pack into LADDER_HOME/models/<name>."""
    from assistant.models.pull import installed_pack_dir, pull_pack

    settings = settings_from(config, home)
    existing = installed_pack_dir(name, settings)
    if existing and not force:
        console().print(f"{name} is already installed at {existing}")
        return
    with RichProgress() as progress:
        path = pull_pack(name, settings, progress=progress, force=force)
    console().print(f"[green]installed[/green] {name} → {path}")


@models_app.command("info")
def models_info(name: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Catalog entry and provenance of a pack."""
    from assistant.models.catalog import get_pack
    from assistant.models.pull import installed_pack_dir, read_pack_info

    settings = settings_from(config, home)
    spec = get_pack(name, settings.catalog_file)
    info = read_pack_info(name, settings)
    out = console()
    out.print(f"[bold]{spec.name}[/bold]: {spec.description}")
    out.print(f"kind      {spec.kind}  ·  format {spec.converter}", markup=False)
    out.print(
        f"upstream  {spec.upstream}  ·  licence {spec.license}  ·  languages {', '.join(spec.languages)}"
    )
    if spec.kind == "embedder":
        dimension = (info or {}).get("dimension", spec.dimension)
        prompts = (info or {}).get("prompts", dict(spec.prompts))
        prefixes = ", ".join(f"{name} {prefix!r}" for name, prefix in prompts.items()) or "none"
        out.print(f"embedder  {dimension} dimensions  ·  prefixes {prefixes}", markup=False)
    out.print(f"file      {spec.file_name}, {human_size(spec.size_bytes)}, sha256 {spec.sha256}")
    out.print("wheels    " + ", ".join(p.requirement for p in spec.parts))
    if spec.notes:
        out.print(f"notes     {spec.notes}")
    if info is None:
        out.print(f"installed no  (run `ladder models pull {name}`)", markup=False)
    else:
        converted = (
            f"converted {info['converted_at']} with transformers {info['converted_with']['transformers']}"
        )
        out.print(
            f"installed {installed_pack_dir(name, settings)} ({human_size(info['size_bytes'])}, {converted})"
        )


@models_app.command("rm")
def models_rm(name: str, config: ConfigOpt = None, home: HomeOpt = None) -> None:
    """Delete an installed pack."""
    from assistant.models.catalog import get_pack
    from assistant.models.pull import remove_pack

    settings = settings_from(config, home)
    get_pack(name, settings.catalog_file)
    if remove_pack(name, settings):
        console().print(f"removed {name}")
    else:
        console().print(f"{name} is not installed")

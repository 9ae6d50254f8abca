"""Model references: the one syntax for naming a model everywhere.

- a pack name from the catalog: ``qwen2.5-coder-0.5b``
- a local transformers folder: ``./my-model`` or ``/models/qwen``
- an OpenAI-compatible endpoint: ``openai:<model>@<base_url>`` (or ``openai:<model>`` with
  the ``openai_base_url`` setting)
- the scripted fake: ``fake`` or ``fake:<script.json>``

Any local reference may carry a PEFT adapter: ``<ref>+<adapter name or folder>``.

This module parses and checks references; ``assistant.backends.load`` builds the backend one
names (models are below backends: nothing here imports a backend).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.models.catalog import load_catalog
from assistant.settings import Settings

RefKind = Literal["pack", "folder", "openai", "fake", "gguf"]

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelRef:
    kind: RefKind
    target: str  # pack name, folder path, endpoint model name or fake script
    base_url: str | None = None
    adapter: Path | None = None
    text: str = ""

    def local_folder(self, settings: Settings) -> Path:
        """The transformers folder of a pack or folder reference; a pack must be installed."""
        if self.kind == "folder":
            return Path(self.target)
        if self.kind != "pack":
            raise ValueError(f"{self.text!r} is not a local model (a pack or a folder)")
        from assistant.models.pull import installed_pack_dir

        folder = installed_pack_dir(self.target, settings)
        if folder is None:
            raise ModelNotFoundError(
                f"model pack {self.target!r} is not installed",
                hint=f"run `ladder models pull {self.target}`",
            )
        return folder


def _resolve_adapter(text: str, settings: Settings) -> Path:
    """The folder of ``+<adapter>``: a PEFT folder (LoRA, prompt tuning), or a full fine-tune's
    whole model (config.json and weights, ``--peft full``), which loads in place of the base."""
    for candidate in (Path(text).expanduser(), settings.adapters_dir / text):
        if (candidate / "adapter_config.json").is_file():
            return candidate.resolve()
        if (candidate / "config.json").is_file() and any(candidate.glob("*.safetensors")):
            return candidate.resolve()
    raise ModelNotFoundError(
        f"adapter {text!r} not found",
        hint=f"give a folder with adapter_config.json (or a fully fine-tuned model), or a name under "
        f"{settings.adapters_dir}",
    )


def check_model_folder(path: Path) -> Path:
    """A folder that transformers can load, or a clear error saying what is wrong."""
    if not path.exists():
        raise ModelNotFoundError(f"model folder not found: {path}")
    if path.is_file():
        hint = (
            "GGUF files are used through model packs (`ladder models list`)"
            if path.suffix == ".gguf"
            else "give the folder that holds config.json and the weights"
        )
        raise ModelNotFoundError(f"{path} is a file, not a model folder", hint=hint)
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"{path} is not a model folder: it has no config.json",
            hint="give a transformers folder (config.json, tokenizer and *.safetensors)",
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelNotFoundError(f"{path} has a config.json but no weights (*.safetensors or *.bin)")
    return path.resolve()


def check_gguf_file(path: Path) -> Path:
    """A readable file that starts with the GGUF magic; anything else is a one-line error."""
    if not path.is_file():
        raise ModelNotFoundError(f"no GGUF file at {path}", hint="use gguf:<path to a .gguf file>")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelNotFoundError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    return path.resolve()


def parse_model_ref(text: str | None, settings: Settings) -> ModelRef:
    """Parse and validate a model reference; raise a ``LadderError`` that says how to fix it."""
    raw = (text or settings.model).strip()
    if not raw:
        raise ConfigError("empty model reference")
    base, plus, adapter_text = raw.partition("+")
    if raw.startswith("openai:"):
        spec = raw[len("openai:") :]
        model, at, url = spec.partition("@")
        url = url if at else (settings.openai_base_url or "")
        if not model:
            raise ConfigError(f"bad endpoint reference {raw!r}", hint="use openai:<model>@<base_url>")
        if not url:
            raise ConfigError(
                f"no base URL for {raw!r}",
                hint="use openai:<model>@http://host:port/v1 or set openai_base_url",
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL must start with http:// or https://, got {url!r}")
        return ModelRef("openai", model, base_url=url.rstrip("/"), text=raw)
    if raw.startswith("gguf:"):
        if plus:
            raise ConfigError(
                f"{raw!r}: a GGUF file cannot take an adapter",
                hint="merge the adapter first (`ladder deploy` or `ladder finetune export`) and convert that",
            )
        return ModelRef("gguf", str(check_gguf_file(Path(raw[len("gguf:") :]).expanduser())), text=raw)
    adapter = _resolve_adapter(adapter_text, settings) if plus else None
    if base == "fake" or base.startswith("fake:"):
        return ModelRef("fake", base[len("fake:") :] if ":" in base else "", adapter=adapter, text=raw)
    catalog = load_catalog(settings.catalog_file)
    if base in catalog:
        if catalog[base].kind != "llm":
            raise ModelNotFoundError(
                f"{base!r} is an {catalog[base].kind} pack, not a language model",
                hint="use it as a knowledge base's embedding model (embedding_model); `ladder models list` "
                "shows each pack's kind",
            )
        return ModelRef("pack", base, adapter=adapter, text=raw)
    path = Path(base).expanduser()
    if path.exists() or "/" in base or base.startswith("."):
        return ModelRef("folder", str(check_model_folder(path)), adapter=adapter, text=raw)
    raise ModelNotFoundError(
        f"unknown model {base!r}: not a pack name, a folder, gguf:<file> or openai:<model>@<url>",
        hint=f"known packs: {', '.join(sorted(n for n, spec in catalog.items() if spec.kind == 'llm'))}",
    )

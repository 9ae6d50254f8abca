"""One settings loader. Precedence: flag > ``LADDER_*`` env > ``ladder.yaml`` > default.

``ladder.yaml`` is read from ``--config``, else ``$LADDER_CONFIG``, else ``./ladder.yaml``
if it exists. Every value records where it came from, so ``ladder doctor`` can say why a
setting has the value it has.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from assistant.errors import ConfigError

Source = Literal["default", "file", "env", "flag"]
DTYPES = ("auto", "float32", "bfloat16")
OVERFLOW_POLICIES = ("truncate", "error")
DEVICES = ("auto", "cpu", "cuda")
LANGUAGES = ("en", "zh")
KB_STORES = ("embedded", "chroma-server")
# A registered adapter's name (`server_adapters`): a folder name under LADDER_HOME/adapters.
_ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _default_home() -> Path:
    return Path.home() / ".ladder"


@dataclass
class Settings:
    home: Path = field(default_factory=_default_home)
    # The model used when none is named: a pack name, a folder or openai:<model>@<url>.
    model: str = "qwen2.5-coder-0.5b"
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int = 16
    # Exam scoring on a bf16 model: a question whose two best options are closer than this
    # (log-probability per choice token) is scored again with a float32 copy of the model,
    # because bf16 rounding can flip a close call; 0 = never (benchmarks/scoring_dtype.py).
    score_recheck_margin: float = 0.25
    # ``ladder eval``: after a batched run, this many of the suite's questions are answered again
    # one at a time to measure the single-request latency (p50/p95) that one user waits; 0 = do
    # not measure. Five keeps the demo fast; their p95 is the slowest of them (nearest rank).
    latency_sample: int = 5
    context_overflow: str = "truncate"
    # openai_compat backend
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    request_timeout_s: float = 60.0
    max_retries: int = 3
    max_concurrency: int = 4
    # model packs: where pip looks for the carrier wheels (None = pip's own config)
    pip_index_url: str | None = None
    pip_find_links: str | None = None
    pip_no_index: bool = False
    # extra pack catalog (YAML list of packs), merged over the built-in one
    catalog_file: Path | None = None
    # knowledge base
    # embedding model of new knowledge bases: an embedder pack name, all-MiniLM-L6-v2 (packaged) or a
    # sentence-transformers folder; None = the multilingual-e5-small pack (assistant/knowledge/embeddings.py)
    embedding_model: str | None = None
    # reranking: a sentence-transformers CrossEncoder folder, 'llm' (the configured model judges
    # relevance) or 'llm:<model reference>'; None = off (assistant/knowledge/rerank.py)
    reranker_model: str | None = None
    # where knowledge bases keep their vectors: embedded (a Chroma folder under LADDER_HOME/kb/<name>/)
    # or chroma-server (a Chroma server at chroma_host:chroma_port, over https when chroma_tls; its
    # auth token is read from the environment variable LADDER_CHROMA_TOKEN, never from a file and
    # never printed). BM25 and kb.json stay local in both cases (docs/scaling-out.md).
    kb_store: str = "embedded"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_tls: bool = False
    chunk_size: int = 500  # characters
    chunk_overlap: int = 80  # characters
    max_file_mb: float = 50.0
    # os.pathsep-separated folders that ingestion may read; None = the current folder and ~
    allowed_roots: str | None = None
    # evaluation: a YAML price table for cost per 1,000 questions (see evaluation/metrics/cost.py)
    price_table: Path | None = None
    # decisions: the language of the plain-words reasons (en | zh)
    language: str = "en"
    # `ladder serve` (see ui/server/): comma-separated "sha256:<hex>" hashes of the API
    # keys it accepts (`ladder serve --new-key` makes one), a YAML file of named strategy
    # configs offered as models, comma-separated model references clients may name besides
    # the server's model (nothing else a client names is ever loaded), requests waiting for
    # the one model worker, the body limit.
    server_api_key_hashes: str | None = None
    server_models: Path | None = None
    server_allowed_models: str | None = None
    server_queue_size: int = 8
    server_max_request_kb: int = 256
    # `ladder serve`: comma-separated names of registered adapters (LADDER_HOME/adapters/<name>)
    # that a client may ask for as the `model` (the server's model + that adapter, as vLLM
    # serves LoRA modules by name); names only, never paths; no other adapter is ever loaded.
    server_adapters: str | None = None
    # `ladder ui`: the workbench password as a salted scrypt hash (`ladder ui --password-set`);
    # None = no password (the workbench binds 127.0.0.1 unless told otherwise).
    ui_password_hash: str | None = None
    # `ladder ui` / `ladder chat-ui` behind a reverse proxy: the header that carries the client's
    # address (e.g. X-Forwarded-For), so wrong passwords are counted per client; None = the
    # connection's address (a client can forge the header, so only set it behind a proxy).
    ui_trust_proxy_header: str | None = None
    # Monitoring (assistant/monitoring): one row per answer served to a user (chat, API,
    # `ladder ask`) in ladder.db's answer_log; false = nothing is recorded. Rows older than
    # answer_log_days are deleted whenever a row is written.
    answer_log: bool = True
    answer_log_days: int = 90
    sources: dict[str, Source] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if self.catalog_file is not None:
            self.catalog_file = Path(self.catalog_file).expanduser()
        if self.price_table is not None:
            self.price_table = Path(self.price_table).expanduser()
        if self.server_models is not None:
            self.server_models = Path(self.server_models).expanduser()
        if self.server_queue_size < 0:
            raise ConfigError(f"server_queue_size must be >= 0, got {self.server_queue_size}")
        if self.server_max_request_kb <= 0:
            raise ConfigError(f"server_max_request_kb must be > 0, got {self.server_max_request_kb}")
        for name in (self.server_adapters or "").split(","):
            if name.strip() and not _ADAPTER_NAME.fullmatch(name.strip()):
                raise ConfigError(
                    f"server_adapters: {name.strip()!r} is not an adapter name",
                    hint="name adapters under LADDER_HOME/adapters (letters, digits, . _ -), not paths",
                )
        if self.answer_log_days <= 0:
            raise ConfigError(f"answer_log_days must be > 0, got {self.answer_log_days}")
        if self.threads <= 0:
            raise ConfigError(f"threads must be > 0, got {self.threads}")
        if self.score_recheck_margin < 0:
            raise ConfigError(f"score_recheck_margin must be >= 0, got {self.score_recheck_margin}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be > 0, got {self.batch_size}")
        if self.latency_sample < 0:
            raise ConfigError(f"latency_sample must be >= 0, got {self.latency_sample}")
        if self.max_concurrency <= 0:
            raise ConfigError(f"max_concurrency must be > 0, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.chunk_size <= 0:
            raise ConfigError(f"chunk_size must be > 0, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb must be > 0, got {self.max_file_mb}")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if not 0 < self.chroma_port < 65536:
            raise ConfigError(f"chroma_port must be in 1..65535, got {self.chroma_port}")
        for name, value, allowed in (
            ("kb_store", self.kb_store, KB_STORES),
            ("dtype", self.dtype, DTYPES),
            ("device", self.device, DEVICES),
            ("context_overflow", self.context_overflow, OVERFLOW_POLICIES),
            ("language", self.language, LANGUAGES),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    # Paths under LADDER_HOME, in one place.
    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def wheel_cache_dir(self) -> Path:
        return self.home / "cache" / "wheels"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def kb_dir(self) -> Path:
        return self.home / "kb"

    @property
    def db_path(self) -> Path:
        return self.home / "ladder.db"

    def fingerprint(self) -> str:
        """All values as one string: a cache key for things built from the settings."""
        return repr([(f.name, getattr(self, f.name)) for f in fields(self) if f.name != "sources"])

    def public_items(self) -> dict[str, Any]:
        """Values for display, with secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.name == "ui_password_hash" and value:
                value = "(set)"
            if f.name == "openai_api_key" and value:
                value = value[:3] + "…" + value[-2:] if len(value) > 8 else "***"
            out[f.name] = value
        return out


_FIELDS = {f.name: f for f in fields(Settings) if f.name != "sources"}
ENV_PREFIX = "LADDER_"


def _coerce(name: str, raw: Any, origin: str) -> Any:
    """Turn a YAML or env value into the field's type, with an error that names the origin."""
    if raw is None:
        return None
    annotation = str(_FIELDS[name].type)
    try:
        if annotation.startswith("int"):
            return int(raw)
        if annotation.startswith("float"):
            return float(raw)
        if annotation.startswith("bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if "Path" in annotation:
            return Path(str(raw))
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{origin}: bad value for {name}: {exc}") from None


def _config_path(explicit: str | Path | None) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    env = os.environ.get("LADDER_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"LADDER_CONFIG points at a missing file: {path}")
        return path
    local = Path("ladder.yaml")
    return local if local.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    # Settings may sit at the top level or under a `settings:` key (decision configs
    # and other documents can share the file).
    section = data.get("settings", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: `settings:` must be a mapping")
    return section


def load_settings(flags: dict[str, Any] | None = None, config: str | Path | None = None) -> Settings:
    """Build the settings from defaults, file, environment and flags, in that order."""
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}

    path = _config_path(config)
    if path is not None:
        for key, raw in _read_yaml(path).items():
            if key not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise ConfigError(f"{path}: unknown setting {key!r}", hint=f"known: {known}")
            values[key] = _coerce(key, raw, str(path))
            sources[key] = "file"

    for name in _FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in os.environ:
            values[name] = _coerce(name, os.environ[env_name], f"${env_name}")
            sources[name] = "env"
    # The openai client's own variables are a common convention; honour them last-resort.
    if "openai_api_key" not in values and os.environ.get("OPENAI_API_KEY"):
        values["openai_api_key"] = os.environ["OPENAI_API_KEY"]
        sources["openai_api_key"] = "env"

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw, f"--{name.replace('_', '-')}")
        sources[name] = "flag"

    settings = Settings(**values)
    settings.sources = {name: sources.get(name, "default") for name in _FIELDS}
    return settings


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy with some fields changed, keeping the recorded sources."""
    new = dataclasses.replace(settings, **changes)
    new.sources = {**settings.sources, **{k: "flag" for k in changes}}
    return new


__all__ = ["DTYPES", "Settings", "load_settings", "replace"]

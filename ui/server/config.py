"""What ``ladder serve`` needs to know: bind address, API keys, limits, and which model names
it answers to.

**Model names** (the ``model`` field of a request) are looked up, never parsed: the server
answers only for the names ``offered`` returns, which are exactly what ``/v1/models`` lists:

- a named config from the ``server_models`` YAML file (``name: {strategy: rag, kb: handbook}``
  or ``name: path/to/strategy.yaml``, relative to that file);
- ``prompt``, ``reflection`` and ``agent`` over the server's model;
- ``rag:<kb>`` and ``agent:<kb>`` for every knowledge base under ``LADDER_HOME``;
- the server's model (``--model``, else the ``model`` setting) and each reference in the
  ``server_allowed_models`` setting (``--allow-model``), answered by ``prompt``;
- each adapter name in the ``server_adapters`` setting (``--adapter``): the server's model
  with that registered adapter (``LADDER_HOME/adapters/<name>``), answered by ``prompt``, the
  way vLLM serves a LoRA module by name (``--lora-modules name=path``). Only names the
  operator listed: a client naming any other adapter gets the same 404 as any unknown name.

``/v1/completions`` (raw text, no strategy) answers for the model references and adapter
names among those (``completion_model``); a strategy name there is a 400.

A model reference is code-like input (``openai:<m>@<url>`` connects somewhere with the
operator's key, ``fake:<path>`` reads a file, a folder or ``+<adapter>`` probes the disk),
so a client's string never reaches ``parse_model_ref``; anything else is one and the same
404 (``UNKNOWN_MODEL``), which names neither the request nor a server path.

**Keys** are compared by their SHA-256 only: settings hold ``sha256:<hex>`` values, a key
given by flag or environment is hashed on start and the plain text is not kept.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, ModelNotFoundError
from assistant.settings import Settings

KB_STRATEGIES = ("rag", "agent")
# The strategies that need nothing but a model (fewshot needs examples, rag a knowledge base:
# offer those as named configs).
BARE_STRATEGIES = ("prompt", "reflection", "agent")
HASH_PREFIX = "sha256:"
# The one answer to every name the server does not offer. It must not echo the name or say
# why: "file not found" versus "not a model folder" would tell a client which paths exist.
UNKNOWN_MODEL = "unknown model: use one of the names GET /v1/models lists"


def hash_key(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return "lk-" + secrets.token_urlsafe(32)


def parse_key_hashes(text: str | None) -> list[str]:
    hashes = [part.strip() for part in (text or "").split(",") if part.strip()]
    for value in hashes:
        digest = value.removeprefix(HASH_PREFIX)
        if not value.startswith(HASH_PREFIX) or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
            raise ConfigError(
                f"server_api_key_hashes: {value[:20]!r}… is not a sha256:<64 hex digits> hash",
                hint="make one with `ladder serve --new-key`; never put the plain key in settings",
            )
    return hashes


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    model: str | None = None  # the model behind strategy names; None = the `model` setting
    key_hashes: list[str] = field(default_factory=list)
    queue_size: int = 8  # requests that may wait while the worker answers one
    max_request_bytes: int = 256 * 1024
    named: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowed_models: list[str] = field(default_factory=list)  # model references offered besides `model`
    adapters: list[str] = field(default_factory=list)  # registered adapter names offered over `model`
    allow_no_auth: bool = False  # needed to serve without a key on a non-loopback address
    recent_answers: int = 1000  # answers remembered for /v1/feedback by completion id

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if self.queue_size < 0:
            raise ConfigError(f"queue size must be >= 0, got {self.queue_size}")
        if self.max_request_bytes <= 0:
            raise ConfigError(f"max request size must be > 0, got {self.max_request_bytes}")

    @property
    def auth_required(self) -> bool:
        return bool(self.key_hashes)

    def check_bind(self) -> None:
        """Refuse to serve without a key on an address other machines can reach."""
        if not self.auth_required and not is_loopback(self.host) and not self.allow_no_auth:
            raise ConfigError(
                f"refusing to serve on {self.host} without an API key: anyone who can reach it could use it",
                hint="give --api-key (or server_api_key_hashes), bind 127.0.0.1, or pass --insecure-no-auth",
            )

    def key_ok(self, key: str | None) -> bool:
        if not self.auth_required:
            return True
        if not key:
            return False
        digest = hash_key(key)
        # Compare with every hash (no early exit) in constant time per comparison.
        return sum(hmac.compare_digest(digest, known) for known in self.key_hashes) > 0


def load_named(path: Path | None) -> dict[str, dict[str, Any]]:
    """The ``server_models`` file: model name -> strategy config mapping."""
    if path is None:
        return {}
    import yaml

    from assistant.service import strategy_data

    if not path.is_file():
        raise ConfigError(f"server_models file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of model name -> strategy config")
    out: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if isinstance(value, str):
            target = Path(value) if Path(value).is_absolute() else path.parent / value
            value, _origin = strategy_data(target)
        if not isinstance(value, dict) or "strategy" not in value:
            raise ConfigError(f"{path}: {name!r} must be a strategy config with a `strategy` key, or a path")
        out[str(name)] = dict(value)
    return out


def server_config(settings: Settings, **flags: Any) -> ServerConfig:
    """The config from settings, with flags (host, port, model, api_keys, ...) winning."""
    hashes = parse_key_hashes(settings.server_api_key_hashes)
    hashes += [hash_key(key) for key in flags.pop("api_keys", None) or [] if key]
    values: dict[str, Any] = {
        "key_hashes": hashes,
        "queue_size": settings.server_queue_size,
        "max_request_bytes": settings.server_max_request_kb * 1024,
        "named": load_named(settings.server_models),
        "allowed_models": parse_allowed_models(settings.server_allowed_models),
        "adapters": parse_allowed_models(settings.server_adapters),
    }
    values.update({key: value for key, value in flags.items() if value is not None})
    return ServerConfig(**values)


def adapter_reference(model: str, adapter: str) -> str:
    """The model reference an adapter name stands for: the server's model + that adapter."""
    return f"{model}+{adapter}"


def parse_allowed_models(text: str | None) -> list[str]:
    """The ``server_allowed_models`` setting: comma-separated model references."""
    return list(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))


def offered(config: ServerConfig, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every model name the server answers for, with the strategy config it stands for, in
    the order ``/v1/models`` lists them; the first of two equal names wins."""
    from assistant.knowledge import KnowledgeBase

    model = config.model or settings.model
    names: dict[str, dict[str, Any]] = {}
    for name, spec in config.named.items():
        names[name] = {"model": model, **spec}
    for strategy in BARE_STRATEGIES:
        names.setdefault(strategy, {"strategy": strategy, "model": model})
    for kb in KnowledgeBase.list_all(settings):
        for strategy in KB_STRATEGIES:
            names.setdefault(f"{strategy}:{kb}", {"strategy": strategy, "kb": kb, "model": model})
    for reference in (model, *config.allowed_models):
        names.setdefault(reference, {"strategy": "prompt", "model": reference})
    for adapter in config.adapters:
        names.setdefault(adapter, {"strategy": "prompt", "model": adapter_reference(model, adapter)})
    return names


def completion_model(name: str, config: ServerConfig, settings: Settings) -> str:
    """The model reference behind a ``/v1/completions`` request's model name: the server's
    model, an allowed reference or an adapter name. A strategy name is refused (400), any
    other name is ``UNKNOWN_MODEL`` (404)."""
    model = config.model or settings.model
    references = {reference: reference for reference in (model, *config.allowed_models)}
    for adapter in config.adapters:
        references.setdefault(adapter, adapter_reference(model, adapter))
    name = name.strip()
    if name in references:
        return references[name]
    resolve_model(name, config, settings)  # 404 unless the server offers the name at all
    raise ConfigError(
        f"{name!r} is a strategy: /v1/completions scores raw text with a model",
        hint="name the server's model, an allowed model or an adapter; strategies answer on "
        "/v1/chat/completions",
    )


def resolve_model(name: str, config: ServerConfig, settings: Settings) -> dict[str, Any]:
    """The strategy config a request's model name stands for, or ``ModelNotFoundError``
    (``UNKNOWN_MODEL``) for any name the server does not offer."""
    spec = offered(config, settings).get(name.strip())
    if spec is None:
        raise ModelNotFoundError(UNKNOWN_MODEL)
    return dict(spec)


def model_names(config: ServerConfig, settings: Settings) -> list[str]:
    """What ``/v1/models`` lists: exactly the names ``resolve_model`` accepts."""
    return list(offered(config, settings))


__all__ = [
    "UNKNOWN_MODEL",
    "ServerConfig",
    "adapter_reference",
    "completion_model",
    "hash_key",
    "is_loopback",
    "model_names",
    "new_key",
    "offered",
    "parse_allowed_models",
    "parse_key_hashes",
    "resolve_model",
    "server_config",
]

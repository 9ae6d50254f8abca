"""What every verifier shares: the ``Verdict``, the options, the protocol and the registry.

A verifier's ``check(answer_text, question)`` returns a ``Verdict``. It never raises on bad
model output: an unparsable answer is a failed verdict whose ``feedback`` tells the model
what to fix. ``fixed`` is the answer in normal form (the label, the option letter, the bare
JSON, the bare SQL) for the strategy to return when the check passes.

Verifiers are registered by name (``assistant.registry``) and a second registration is
refused. All take one ``VerifierOptions``, so a user-added verifier is configured the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from assistant.registry import Registry
from assistant.types import Question


@dataclass
class Verdict:
    ok: bool
    feedback: str
    fixed: str | None = None
    # Result rows of an SQL check (at most ``max_rows``), for the trace and the caller.
    rows: list[tuple[Any, ...]] | None = None


@dataclass
class VerifierOptions:
    labels: list[str] | None = None
    pattern: str | None = None
    database: str | None = None
    schema: dict[str, Any] | None = None
    timeout_s: float = 2.0
    max_rows: int = 20


class Verifier(Protocol):
    name: ClassVar[str]

    def check(self, answer_text: str, question: Question) -> Verdict: ...


# Verifier classes (anything that takes the options and gives a Verifier) by name.
VERIFIERS: Registry[Callable[[VerifierOptions], Verifier]] = Registry("verifier")


def register_verifier(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: register a verifier under ``name``; a second ``name`` is a bug."""

    def decorate(cls: type[Any]) -> type[Any]:
        VERIFIERS.register(name, cls)
        cls.name = name
        return cls

    return decorate


def verifier_names() -> list[str]:
    return VERIFIERS.names()


def build_verifier(name: str, options: VerifierOptions | None = None) -> Verifier:
    """The verifier ``name`` with ``options``; an unknown name is a ``ConfigError`` listing the known."""
    return VERIFIERS.get(name)(options or VerifierOptions())


# The built-ins, one module per family, each class naming itself.
VERIFIERS.register("json_schema", "assistant.strategies.verifiers.json_schema:JsonSchemaVerifier")
VERIFIERS.register("regex", "assistant.strategies.verifiers.text:RegexVerifier")
VERIFIERS.register("labels", "assistant.strategies.verifiers.text:LabelsVerifier")
VERIFIERS.register("mcq", "assistant.strategies.verifiers.mcq:McqVerifier")
VERIFIERS.register("sql", "assistant.strategies.verifiers.sql:SqlVerifier")

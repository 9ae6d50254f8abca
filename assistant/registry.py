"""One registry of named things: strategies, backends, metrics, tools and verifiers.

A target is a ``"module:Class"`` string, imported the first time it is asked for (so naming
a backend or a metric never imports torch or ragas: lm-eval's ``MODEL_MAPPING`` pattern),
or the object itself where it already exists (a user's class, a tool's spec).

Registering a name twice is a bug and raises ``KeyError`` (peft's ``register_peft_method``).
Asking for a name nobody registered raises :class:`UnknownNameError`, which lists the names
that are known: a user who mistyped one in a config sees the choices.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar, cast

from assistant.errors import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError):
    """No target is registered under this name.

    A ``ConfigError``, because the name usually comes from a user's config or flag (the CLI
    reports it with the known names as the hint), and a ``KeyError``, because it is a failed
    lookup by key, as ``mapping[name]`` would raise (code that asks for a name it made itself,
    such as a backend for a kind of model reference, treats it as one).
    """


def _where(target: object) -> str:
    """`` (module:Name)`` for a message about ``target``: a string as given, a class or a function
    by where it is defined; nothing for other objects (a tool's spec)."""
    if isinstance(target, str):
        return f" ({target})"
    if hasattr(target, "__qualname__"):
        return f" ({getattr(target, '__module__', '?')}:{target.__qualname__})"
    return ""


class Registry(Generic[T]):
    """Names to lazily imported targets, in registration order.

    ``kind`` names what is registered ("strategy", "metric") in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str | T] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: str | T) -> None:
        """Register ``target`` under ``name``; a second ``name`` raises ``KeyError``."""
        if name in self._targets:
            raise KeyError(f"{self.kind} {name!r} is already registered{_where(self._targets[name])}")
        if isinstance(target, str):
            module_name, colon, attribute = target.partition(":")
            if not (colon and module_name and attribute):
                raise ValueError(f"{self.kind} target must be 'module:Class', got {target!r}")
        else:
            self._loaded[name] = target
        self._targets[name] = target

    def get(self, name: str) -> T:
        """The target registered under ``name``, importing its module on first use."""
        if name in self._loaded:
            return self._loaded[name]
        try:
            target = self._targets[name]
        except KeyError:
            known = ", ".join(self)
            raise UnknownNameError(f"unknown {self.kind} {name!r}", hint=f"known: {known}") from None
        module_name, _, attribute = cast(str, target).partition(":")
        module = importlib.import_module(module_name)
        try:
            loaded = cast(T, getattr(module, attribute))
        except AttributeError:
            raise ImportError(f"{self.kind} {name!r}: module {module_name} has no {attribute!r}") from None
        self._loaded[name] = loaded
        return loaded

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._targets)

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (a test registers into a copy)."""
        twin: Registry[T] = Registry(self.kind)
        twin._targets = dict(self._targets)
        twin._loaded = dict(self._loaded)
        return twin

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._targets))

    def __len__(self) -> int:
        return len(self._targets)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

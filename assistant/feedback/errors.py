"""Feedback errors a reviewer or an end user can cause."""

from __future__ import annotations

from assistant.errors import ConfigError, LadderError
from assistant.records_io import RecordError


class FeedbackError(RecordError, ConfigError):
    """Feedback that cannot be stored or promoted as asked (exit code 2); a bad file it reads
    (an existing suite's data) is named with its line."""


class FeedbackNotFound(LadderError):
    exit_code = 3


class LeakageRefused(FeedbackError):
    """The question already feeds the other side (training vs test)."""


__all__ = ["FeedbackError", "FeedbackNotFound", "LeakageRefused"]

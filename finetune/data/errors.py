"""The errors of fine-tuning data, both ``RecordError``s (``assistant.records_io``): the message
starts with ``file:line[:column]`` and names the field at fault.

- ``DataError``: a raw file ``ladder finetune prepare`` cannot read as its format.
- ``TrainDataError``: prepared data or preference pairs the trainer cannot use (a
  ``ConfigError`` too, so the training CLI reports it like a bad flag).
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.errors import ConfigError
from assistant.records_io import RecordError


class DataError(RecordError):
    """A bad training-data file; the message starts with ``file:line[:column]``, then the
    missing or bad *field* (``field 'output': missing``)."""


class TrainDataError(RecordError, ConfigError):
    """The training data cannot be used as it is (exit code 2)."""

    @classmethod
    def bad_json(cls, file: Path, line: int, exc: json.JSONDecodeError) -> RecordError:
        # The trainer puts the column inside the message: ``train.jsonl:61: not valid JSON (..., column 5)``.
        return cls(f"not valid JSON ({exc.msg}, column {exc.colno})", file=file, line=line)


__all__ = ["DataError", "TrainDataError"]

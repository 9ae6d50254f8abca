"""``SuiteError``: a bad suite spec or data file, with the file, line and column to fix."""

from __future__ import annotations

from assistant.records_io import RecordError

# The hint of an error that a suite's own files would cause.
RELATIVE_TO_YAML = "paths in a suite are relative to its YAML"
WHAT_A_SUITE_IS = (
    "a suite is a YAML file (name, kind, data, metrics, thresholds) that names its data files; "
    "data is JSONL or CSV with user_input and reference (QA), or JSONL with question, options "
    "and label (MCQ)"
)


class SuiteError(RecordError):
    """A bad suite spec or data file; ``file``/``line``/``column`` say where and ``field`` names
    the key or CSV column at fault (``column 'reference': ...``: a suite's fields are its CSV
    columns)."""

    field_label = "column"


__all__ = ["RELATIVE_TO_YAML", "WHAT_A_SUITE_IS", "SuiteError"]

"""Verifiers: cheap, deterministic checks of a model's answer, used by the reflection loop.

``base`` holds the ``Verdict``, the options and the registry; each family of checks has its
module: ``json_schema``, ``text`` (regex, labels), ``mcq`` and ``sql`` (with the read-only
SQLite helpers the agent's ``sql_query`` tool shares). ``extract`` finds JSON in a reply.
"""

from assistant.strategies.verifiers.base import (
    VERIFIERS,
    Verdict,
    Verifier,
    VerifierOptions,
    build_verifier,
    register_verifier,
    verifier_names,
)
from assistant.strategies.verifiers.extract import fenced_blocks, find_json
from assistant.strategies.verifiers.json_schema import JsonSchemaVerifier
from assistant.strategies.verifiers.mcq import LETTERS, McqVerifier
from assistant.strategies.verifiers.sql import (
    SqlResult,
    SqlVerifier,
    check_database,
    database_schema,
    extract_sql,
    json_safe_rows,
    run_readonly_sql,
)
from assistant.strategies.verifiers.text import LabelsVerifier, RegexVerifier, normal_label

__all__ = [
    "LETTERS",
    "VERIFIERS",
    "JsonSchemaVerifier",
    "LabelsVerifier",
    "McqVerifier",
    "RegexVerifier",
    "SqlResult",
    "SqlVerifier",
    "Verdict",
    "Verifier",
    "VerifierOptions",
    "build_verifier",
    "check_database",
    "database_schema",
    "extract_sql",
    "fenced_blocks",
    "find_json",
    "json_safe_rows",
    "normal_label",
    "register_verifier",
    "run_readonly_sql",
    "verifier_names",
]

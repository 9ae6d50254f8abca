from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import ConfigError
from assistant.strategies import verifiers
from assistant.strategies.verifiers import (
    McqVerifier,
    Verdict,
    VerifierOptions,
    build_verifier,
    extract_sql,
    find_json,
    register_verifier,
    run_readonly_sql,
    verifier_names,
)
from assistant.types import Question

Q = Question("q")
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def make_db(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT);"
            "INSERT INTO users (name, city) VALUES ('ann', 'Paris'), ('bob', 'Oslo'), ('cy', 'Paris');"
        )
    connection.close()
    return path


def user_count(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM users").fetchone()[0])
    finally:
        connection.close()


# ---- registry -----------------------------------------------------------------------------
def test_registry_names_refuses_duplicates_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"json_schema", "regex", "labels", "mcq", "sql"} <= set(verifier_names())
    with pytest.raises(KeyError, match="already registered"):
        register_verifier("regex")(type("Other", (), {}))
    with pytest.raises(ConfigError, match="unknown verifier 'nope'"):
        build_verifier("nope")
    monkeypatch.setattr(verifiers.base, "VERIFIERS", verifiers.VERIFIERS.copy())

    @register_verifier("even_length")
    class EvenLength:
        def __init__(self, options: VerifierOptions) -> None:
            self.options = options

        def check(self, answer_text: str, question: Question) -> Verdict:
            return Verdict(len(answer_text) % 2 == 0, "length must be even")

    assert EvenLength.name == "even_length"  # type: ignore[attr-defined]
    assert build_verifier("even_length").check("ab", Q).ok is True
    assert build_verifier("even_length").check("abc", Q) == Verdict(False, "length must be even")


# ---- JSON ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here you go:\n```json\n{"a": [1, 2]}\n```\nDone.', {"a": [1, 2]}),
        ("Result: {'a': 'x', 'b': true,} trailing", {"a": "x", "b": True}),
        ("first {not json} then [1, 2]", [1, 2]),
        ("nothing here", None),
        ("{unclosed", None),
    ],
)
def test_find_json(text: str, expected: Any) -> None:
    assert find_json(text) == expected


def test_find_json_with_a_predicate_skips_other_objects() -> None:
    text = 'noise {"x": 1} then {"action": "go"}'
    assert find_json(text, lambda v: isinstance(v, dict) and "action" in v) == {"action": "go"}


def test_json_schema_passes_fenced_json_and_normalises() -> None:
    verifier = build_verifier("json_schema", VerifierOptions(schema=SCHEMA))
    verdict = verifier.check('Sure!\n```json\n{"name": "Ann", "age": 30}\n```', Q)
    assert verdict.ok and verdict.fixed == '{"name": "Ann", "age": 30}'


def test_json_schema_feedback_names_the_violations() -> None:
    verifier = build_verifier("json_schema", VerifierOptions(schema=SCHEMA))
    verdict = verifier.check('{"name": "Ann", "age": "thirty"}', Q)
    assert not verdict.ok
    assert "at age: 'thirty' is not of type 'integer'" in verdict.feedback
    missing = verifier.check('{"name": "Ann"}', Q)
    assert "'age' is a required property" in missing.feedback
    none = verifier.check("I don't know", Q)
    assert not none.ok and "contains no JSON" in none.feedback and '"required"' in none.feedback


def test_json_schema_config_errors() -> None:
    with pytest.raises(ConfigError, match="needs a JSON schema"):
        build_verifier("json_schema")
    with pytest.raises(ConfigError, match="invalid JSON schema"):
        build_verifier("json_schema", VerifierOptions(schema={"type": "no-such-type"}))


# ---- regex and labels -----------------------------------------------------------------------
def test_regex() -> None:
    verifier = build_verifier("regex", VerifierOptions(pattern=r"^\d{4}-\d{2}-\d{2}$"))
    assert verifier.check("  2024-05-01\n", Q).ok
    bad = verifier.check("May 1st", Q)
    assert not bad.ok and r"^\d{4}-\d{2}-\d{2}$" in bad.feedback
    with pytest.raises(ConfigError, match="needs `pattern`"):
        build_verifier("regex")
    with pytest.raises(ConfigError, match="invalid regex"):
        build_verifier("regex", VerifierOptions(pattern="(unclosed"))


@pytest.mark.parametrize("answer", ["positive", "  POSITIVE. ", "Positive\n", '"positive"', "**Positive**"])
def test_labels_accepts_case_and_whitespace_variants(answer: str) -> None:
    verifier = build_verifier("labels", VerifierOptions(labels=["Positive", "Negative", "Very   mixed"]))
    assert verifier.check(answer, Q) == Verdict(True, "'Positive' is an allowed label.", fixed="Positive")


def test_labels_feedback_lists_the_labels() -> None:
    verifier = build_verifier("labels", VerifierOptions(labels=["Positive", "Negative", "Very   mixed"]))
    assert verifier.check("very mixed", Q).fixed == "Very   mixed"
    bad = verifier.check("It is positive I think", Q)
    assert not bad.ok and "Positive, Negative, Very   mixed" in bad.feedback
    with pytest.raises(ConfigError, match="needs `labels`"):
        build_verifier("labels", VerifierOptions(labels=[]))


# ---- MCQ ----------------------------------------------------------------------------------
CHOICES = ["Paris", "London", "Berlin", "Rome"]


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(C)", "C"),
        ("**D**", "D"),
        ("B. London", "B"),
        ("C) Berlin, because ...", "C"),
        ("答案是B", "B"),
        ("答案：C", "C"),
        ("答案为 (D)。", "D"),
        ("我认为应该选B，因为A不对", "B"),
        ("选择C", "C"),
        ("根据题意，B正确。", "B"),
        ("The answer is (C).", "C"),
        ("Answer: D", "D"),
        ("The correct option is D because A is wrong.", "D"),
        ("I think C is right", "C"),
        ("A cat would say B", "B"),
        ("berlin", "C"),
    ],
)
def test_mcq_extracts_one_letter(answer: str, letter: str) -> None:
    verdict = build_verifier("mcq").check(answer, Question("capital?", choices=CHOICES))
    assert verdict.ok, verdict.feedback
    assert verdict.fixed == letter


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("A and B", "several options (A, B)"),
        ("我不选A，选B", "several options (A, B)"),
        ("Answer: E", "E is not one of the options"),
        ("I am not sure", "names no option letter"),
        ("", "names no option letter"),
    ],
)
def test_mcq_rejects_ambiguous_or_missing(answer: str, reason: str) -> None:
    verdict = build_verifier("mcq").check(answer, Question("capital?", choices=CHOICES))
    assert not verdict.ok and verdict.fixed is None
    assert reason in verdict.feedback and "(A, B, C, D)" in verdict.feedback


def test_mcq_without_choices_is_skipped() -> None:
    assert build_verifier("mcq").check("whatever", Question("open question")).ok
    assert McqVerifier.extract("C", ["x", "y"]) == (None, "the answer names no option letter")


# ---- SQL ----------------------------------------------------------------------------------
def test_extract_sql() -> None:
    assert extract_sql("```sql\nSELECT 1;\n```") == "SELECT 1"
    assert extract_sql("The query is:\nselect name from users;\nIt lists names.") == "select name from users"
    with_query = "WITH x AS (SELECT 1) SELECT * FROM x"
    assert extract_sql(f"```\n{with_query}\n```") == with_query
    assert extract_sql("no query") == "no query"


def test_sql_success_carries_rows(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    verifier = build_verifier("sql", VerifierOptions(database=str(db)))
    verdict = verifier.check("```sql\nSELECT name FROM users WHERE city = 'Paris' ORDER BY name\n```", Q)
    assert verdict.ok
    assert verdict.rows == [("ann",), ("cy",)]
    assert verdict.fixed == "SELECT name FROM users WHERE city = 'Paris' ORDER BY name"
    assert "2 row(s)" in verdict.feedback and "ann" in verdict.feedback


def test_sql_error_feedback_has_message_and_schema(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    verdict = build_verifier("sql", VerifierOptions(database=str(db))).check("SELECT nme FROM users", Q)
    assert not verdict.ok and verdict.rows is None
    assert "SQLite error: no such column: nme" in verdict.feedback
    assert "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT)" in verdict.feedback


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("DELETE FROM users", "only SELECT or WITH queries are allowed, got DELETE"),
        ("-- comment\nDROP TABLE users", "got DROP"),
        ("WITH x AS (SELECT 1) DELETE FROM users", "readonly"),
        ("SELECT 1; DELETE FROM users", "one statement at a time"),
        ("", "got an empty query"),
    ],
)
def test_sql_refuses_writes(tmp_path: Path, query: str, error: str) -> None:
    db = make_db(tmp_path / "app.db")
    result = run_readonly_sql(db, query)
    assert result.error is not None and error in result.error
    assert user_count(db) == 3


def test_sql_time_limit(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    result = run_readonly_sql(db, forever, timeout_s=0.2)
    assert result.error == "the query exceeded the time limit of 0.2 s"


def test_sql_row_limit_and_config_errors(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    result = run_readonly_sql(db, "SELECT name FROM users ORDER BY id", max_rows=2)
    assert result.rows == [("ann",), ("bob",)] and result.truncated
    assert result.preview().startswith("2+ row(s)\nname\nann\nbob")
    with pytest.raises(ConfigError, match="needs `database`"):
        build_verifier("sql")
    with pytest.raises(ConfigError, match="not found"):
        build_verifier("sql", VerifierOptions(database=str(tmp_path / "missing.db")))


GARBAGE = ["", "```", "{{{{", "\x00\x01", "```json\n{'a': (1,", "[" * 3000, "选" * 50]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_verifiers_never_raise_on_bad_output(tmp_path: Path, garbage: str) -> None:
    db = str(make_db(tmp_path / "g.db"))
    options = VerifierOptions(labels=["x"], pattern="x", database=db, schema=SCHEMA)
    question = Question("q", choices=["a", "b"])
    for name in ("json_schema", "regex", "labels", "mcq", "sql"):
        verdict = build_verifier(name, options).check(garbage, question)
        assert verdict.ok is False and verdict.feedback

"""The ``json_schema`` verifier: the answer holds JSON that validates against a schema."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from assistant.errors import ConfigError
from assistant.strategies.verifiers.base import Verdict, VerifierOptions
from assistant.strategies.verifiers.extract import find_json
from assistant.types import Question


def _json_path(path: Any) -> str:
    return "/".join(map(str, path)) or "(root)"


class JsonSchemaVerifier:
    name: ClassVar[str] = "json_schema"

    def __init__(self, options: VerifierOptions) -> None:
        import jsonschema

        if options.schema is None:
            raise ConfigError("the json_schema check needs a JSON schema (`json_schema`)")
        validator_cls = jsonschema.validators.validator_for(options.schema)
        try:
            validator_cls.check_schema(options.schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"invalid JSON schema: {exc.message}") from None
        self.validator = validator_cls(options.schema)
        self.schema_text = json.dumps(options.schema, ensure_ascii=False)

    def check(self, answer_text: str, question: Question) -> Verdict:
        value = find_json(answer_text)
        if value is None:
            return Verdict(
                False, f"The answer contains no JSON. Reply with JSON matching: {self.schema_text}"
            )
        errors = sorted(self.validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"- at {_json_path(e.absolute_path)}: {e.message}" for e in errors[:5]]
            return Verdict(False, "The JSON does not match the schema:\n" + "\n".join(lines)
                           + f"\nSchema: {self.schema_text}")  # fmt: skip
        return Verdict(True, "The JSON matches the schema.", fixed=json.dumps(value, ensure_ascii=False))

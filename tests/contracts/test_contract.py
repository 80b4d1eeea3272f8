from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from tether import Contract, SchemaError


class Review(BaseModel):
    sentiment: Literal["positive", "negative"]
    stars: int = Field(ge=1, le=5)

    @field_validator("stars")
    @classmethod
    def _not_three(cls, value: int) -> int:
        if value == 3:
            raise ValueError("three stars is not allowed here")
        return value


def test_from_model_checks_and_converts() -> None:
    contract = Contract.from_model(Review)
    check, value = contract.check('{"sentiment": "positive", "stars": 5}')
    assert check.ok
    assert value == Review(sentiment="positive", stars=5)


def test_model_validators_beyond_the_schema_count_as_errors() -> None:
    check, value = Contract.from_model(Review).check('{"sentiment": "positive", "stars": 3}')
    assert value is None
    assert any("three stars" in e for e in check.errors)


def test_names_are_safe_for_upstream_apis() -> None:
    contract = Contract.from_schema({"title": "My schema / v2!", "type": "object"})
    assert contract.name == "My_schema_v2"


def test_enforcement_schema_closes_objects_without_changing_the_contract() -> None:
    contract = Contract.from_model(Review)
    schema, strict = contract.enforcement_schema()
    assert schema["additionalProperties"] is False
    assert strict
    assert "additionalProperties" not in contract.schema


def test_optional_fields_make_the_schema_non_strict() -> None:
    contract = Contract.from_schema(
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a"],
        }
    )
    assert contract.enforcement_schema()[1] is False


def test_all_of_is_left_open() -> None:
    schema = {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}]}
    tightened, strict = Contract.from_schema(schema).enforcement_schema()
    assert tightened == schema
    assert strict is False


def test_from_file_reports_the_line_of_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "type": "object",\n  "properties": {,}\n}\n')
    with pytest.raises(SchemaError) as err:
        Contract.from_file(path)
    assert "broken.json" in str(err.value)
    assert "line 3" in str(err.value)


def test_from_file_refuses_non_objects_and_missing_files(tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    with pytest.raises(SchemaError, match="top level must be a JSON object"):
        Contract.from_file(array)
    with pytest.raises(SchemaError, match="cannot read file"):
        Contract.from_file(tmp_path / "missing.json")


def test_from_file_takes_its_name_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "invoice.json"
    path.write_text('{"type": "object"}')
    assert Contract.from_file(path).name == "invoice"

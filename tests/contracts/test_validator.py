from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether import SchemaError, SchemaValidator

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
    "required": ["name", "age"],
}


def test_valid_instance_passes() -> None:
    check = SchemaValidator(PERSON).check_text('{"name": "Ada", "age": 36}')
    assert check.ok
    assert check.value == {"name": "Ada", "age": 36}


def test_errors_name_the_instance_location() -> None:
    check = SchemaValidator(PERSON).check_text('{"name": "", "age": -1, "tags": ["a", "a"]}')
    assert not check.ok
    joined = "\n".join(check.errors)
    assert "at /name:" in joined
    assert "at /age:" in joined
    assert "at /tags:" in joined


def test_text_that_is_not_json_is_reported_not_raised() -> None:
    check = SchemaValidator(PERSON).check_text('{"name": "Ada", ')
    assert not check.ok
    assert check.errors[0].startswith("not valid JSON")


def test_malformed_schema_is_refused_with_its_location() -> None:
    with pytest.raises(SchemaError) as err:
        SchemaValidator({"type": "object", "properties": {"a": {"type": "strin"}}}, source="s.json")
    assert err.value.source == "s.json"
    assert err.value.pointer == "/properties/a/type"
    assert "s.json" in str(err.value)


def test_invalid_regex_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        SchemaValidator({"type": "string", "pattern": "(unclosed"})


def test_remote_refs_are_never_fetched() -> None:
    with pytest.raises(SchemaError) as err:
        SchemaValidator({"$ref": "https://example.com/schema.json"})
    assert "$defs" in str(err.value)


def test_a_schema_must_be_an_object_or_boolean() -> None:
    with pytest.raises(SchemaError):
        SchemaValidator([1, 2])  # type: ignore[arg-type]


def test_json_test_suite(data_dir: Path) -> None:
    """Every JSONTestSuite case: y_ parses, n_ is rejected, i_ never raises."""
    accept_anything = SchemaValidator({})
    cases = sorted((data_dir / "json" / "JSONTestSuite").glob("*.json"))
    assert len(cases) > 300
    wrong = []
    for case in cases:
        text = case.read_bytes().decode("utf-8", errors="surrogateescape")
        check = accept_anything.check_text(text)
        if (case.name.startswith("y_") and not check.ok) or (
            case.name.startswith("n_") and check.ok
        ):
            wrong.append(case.name)
    assert wrong == []


def test_validator_agrees_with_maskbench_labels(data_dir: Path) -> None:
    """The instances of 300 real-world schemas (the vendored maskbench sample): agreement with
    their valid/invalid labels."""
    files = sorted((data_dir / "schemas" / "maskbench").glob("*.json"))
    assert len(files) >= 300
    total = agree = uncompilable = 0
    disagreements: list[str] = []
    for file in files:
        case = json.loads(file.read_text(encoding="utf-8"))
        try:
            validator = SchemaValidator(case["schema"])
        except SchemaError:
            uncompilable += 1
            continue
        for index, test in enumerate(case["tests"]):
            total += 1
            if validator.is_valid(test["data"]) == test["valid"]:
                agree += 1
            else:
                disagreements.append(f"{file.name}#{index} (label valid={test['valid']})")
    rate = agree / total
    print(f"maskbench: {agree}/{total} agree ({rate:.4%}), {uncompilable} schemas refused")
    print("disagreements:", disagreements)
    assert uncompilable <= 5
    assert rate >= 0.999, disagreements

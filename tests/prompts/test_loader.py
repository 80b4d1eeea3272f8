"""Spec files: errors name the file, the line and the field; templates render in a sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tether.errors import RenderError, SpecError
from tether.messages import Message
from tether.prompts.loader import load_spec, parse_spec

from .specs import spec_data

ROOT = Path(__file__).resolve().parents[2]


def _text(**changes: object) -> str:
    return yaml.safe_dump(spec_data(**changes), sort_keys=False, allow_unicode=True)


def test_the_shipped_example_loads() -> None:
    loaded = load_spec(ROOT / "prompts" / "feedback-sentiment" / "1.1.0.yaml")
    assert loaded.spec.name == "feedback-sentiment"
    assert loaded.compiled.contract is not None
    assert len(loaded.spec.tests) >= 3


def test_yaml_syntax_error_names_file_and_line() -> None:
    text = "name: x\nversion: 1.0.0\nmessages: [\n  {role: user, content: hi\n"
    with pytest.raises(SpecError) as err:
        parse_spec(text, source_name="broken.yaml")
    assert err.value.file == "broken.yaml"
    assert err.value.line is not None
    assert "broken.yaml:" in str(err.value)


def test_unknown_field_names_its_line() -> None:
    text = _text() + "temprature: 0.2\n"
    with pytest.raises(SpecError) as err:
        parse_spec(text, source_name="p.yaml")
    assert err.value.field == "temprature"
    assert err.value.line == text.splitlines().index("temprature: 0.2") + 1


def test_wrong_value_names_the_nested_field() -> None:
    text = "\n".join(
        [
            "name: x",
            "version: 1.0.0",
            "messages:",
            "  - role: user",
            "    content: hi",
            "  - role: wizard",
            "    content: hi",
        ]
    )
    with pytest.raises(SpecError) as err:
        parse_spec(text, source_name="p.yaml")
    assert err.value.field == "messages.1.role"
    assert err.value.line == 6


def test_bad_version() -> None:
    with pytest.raises(SpecError, match="semantic version"):
        parse_spec(_text(version="1.0"), source_name="p.yaml")


def test_malformed_output_schema_points_into_it() -> None:
    data = spec_data()
    data["output"]["schema"]["properties"]["urgent"]["type"] = "bool"
    text = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(SpecError) as err:
        parse_spec(text, source_name="p.yaml")
    assert err.value.field == "output.schema.properties.urgent.type"
    assert err.value.line == next(
        n for n, line in enumerate(text.splitlines(), 1) if "type: bool" in line
    )


def test_template_syntax_error_gives_the_line_inside_the_template() -> None:
    text = "\n".join(
        [
            "name: x",
            "version: 1.0.0",
            "messages:",
            "  - role: user",
            "    content: |",
            "      first line",
            "      {{ unclosed",
        ]
    )
    with pytest.raises(SpecError) as err:
        parse_spec(text, source_name="p.yaml")
    assert err.value.field == "messages.0.content"
    assert err.value.line == 7
    assert "template syntax" in str(err.value)


def test_example_outputs_must_meet_the_contract() -> None:
    examples = [{"inputs": {"text": "x"}, "output": {"queue": "nowhere", "urgent": False}}]
    with pytest.raises(SpecError) as err:
        parse_spec(_text(examples=examples), source_name="p.yaml")
    assert err.value.field == "examples.0.output"
    assert "/queue" in str(err.value)


def test_test_inputs_must_meet_the_inputs_schema() -> None:
    tests = [{"name": "t", "inputs": {"txt": "typo"}, "assert": [{"type": "schema_valid"}]}]
    with pytest.raises(SpecError) as err:
        parse_spec(_text(tests=tests), source_name="p.yaml")
    assert err.value.field == "tests.0.inputs"


def test_unknown_assertion_kind() -> None:
    tests = [{"name": "t", "inputs": {"text": "x"}, "assert": [{"type": "vibes"}]}]
    with pytest.raises(SpecError) as err:
        parse_spec(_text(tests=tests), source_name="p.yaml")
    assert err.value.field.startswith("tests.0.assert.0")


def test_output_model_reference() -> None:
    output = {"model": "tether.evals.services:Verdict"}
    text = _text(output=output, examples=[])
    loaded = parse_spec(text, source_name="p.yaml", model_modules=["tether.evals"])
    assert loaded.compiled.contract is not None
    assert loaded.compiled.contract.name == "Verdict"
    with pytest.raises(SpecError, match="cannot import"):
        parse_spec(
            _text(output={"model": "nowhere:Thing"}, examples=[]),
            source_name="p.yaml",
            model_modules=["nowhere"],
        )


def test_render_puts_examples_between_system_and_user() -> None:
    compiled = parse_spec(_text(), source_name="p.yaml").compiled
    messages = compiled.render({"text": "my invoice is wrong"})
    assert messages == (
        Message("system", "Route the ticket."),
        Message("user", "refund please"),
        Message("assistant", '{"queue":"billing","urgent":false}'),
        Message("user", "my invoice is wrong"),
    )


def test_missing_and_undefined_variables_are_errors() -> None:
    compiled = parse_spec(_text(), source_name="p.yaml").compiled
    with pytest.raises(RenderError, match="inputs schema"):
        compiled.render({})
    messages = [{"role": "user", "content": "{{ text }} {{ typo }}"}]
    compiled = parse_spec(_text(messages=messages, examples=[]), source_name="p.yaml").compiled
    with pytest.raises(RenderError, match="typo"):
        compiled.render({"text": "x"})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ text.__class__ }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_template_injection_is_refused(template: str) -> None:
    messages = [{"role": "user", "content": template}]
    compiled = parse_spec(_text(messages=messages, examples=[]), source_name="p.yaml").compiled
    with pytest.raises(RenderError):
        compiled.render({"text": "x"})


def test_input_values_are_data_not_templates() -> None:
    compiled = parse_spec(_text(examples=[]), source_name="p.yaml").compiled
    hostile = "{{ ''.__class__.__mro__ }} {% for x in range(3) %}x{% endfor %} {{ 7 * 7 }}"
    messages = compiled.render({"text": hostile})
    assert messages[-1].content == hostile

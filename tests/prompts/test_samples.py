"""A spec's examples and test inputs are checked at load time (and so at push)."""

from __future__ import annotations

import pytest

from tether.errors import SpecError
from tether.prompts.loader import parse_spec

SPEC = """\
name: s
version: 1.0.0
model: fake
inputs:
  type: object
  properties: {comment: {type: string}}
  required: [comment]
output:
  schema:
    type: object
    properties: {label: {enum: [a, b]}}
    required: [label]
messages:
  - {role: user, content: "{{ comment }}"}
examples:
  - inputs: {comment: "first"}
    output: {label: a}
tests:
  - name: one
    inputs: {comment: "second"}
    assert: [{type: schema_valid}]
"""


def test_a_clean_spec_loads() -> None:
    assert parse_spec(SPEC, source_name="s.yaml").spec.tests


@pytest.mark.parametrize(
    ("change", "field", "line", "words"),
    [
        # an unquoted comma in a flow mapping splits the value into a second key
        (('inputs: {comment: "second"}', "inputs: {comment: one, two}"), "tests.0.inputs", 20,
         "not declared"),
        (("inputs: {comment: \"first\"}", "inputs: {comment: \"first\", extra: 1}"),
         "examples.0.inputs", 16, "'extra'"),
        (('content: "{{ comment }}"', 'content: "{{ comment }} {{ coment }}"'),
         "examples.0.inputs", 16, "does not render"),
        (("output: {label: a}", "output: {label: c}"), "examples.0.output", 17, "contract"),
        (('inputs: {comment: "second"}', "inputs: {}"), "tests.0.inputs", 20, "inputs schema"),
    ],
)  # fmt: skip
def test_bad_samples_fail_the_load_naming_where(
    change: tuple[str, str], field: str, line: int, words: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(SPEC.replace(*change), source_name="s.yaml")
    message = str(err.value)
    assert field in message
    assert message.startswith(f"s.yaml:{line}: "), message
    assert words in message

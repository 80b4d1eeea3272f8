"""Prompt specs cannot be turned against the server: YAML that nests or expands without bound,
an `output.model` that imports any module, templates that build huge strings."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from typer.testing import CliRunner

from tests.prompts.specs import spec_data
from tests.server.conftest import ADMIN_TOKEN, LiveGateway
from tether.cli import app
from tether.contracts.guard import MAX_SCHEMA_DEPTH
from tether.errors import RenderError, SpecError
from tether.prompts.compat import compare
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.loader import MAX_SPEC_DEPTH, parse_spec
from tether.prompts.sandbox import MAX_RENDERED_CHARS
from tether.prompts.spec import PromptSpec


def _text(**changes: object) -> str:
    return yaml.safe_dump(spec_data(**changes), sort_keys=False)


# -- YAML ----------------------------------------------------------------------------------------


def _deep_flow(depth: int) -> str:
    return "name: deep\nversion: 1.0.0\nnested: " + "[" * depth + "]" * depth + "\n"


def _deep_block(depth: int) -> str:
    lines = ["name: deep", "version: 1.0.0", "nested:"]
    lines += [f"{'  ' * (level + 1)}a:" for level in range(depth)]
    return "\n".join(lines) + " end\n"


def _deep_schema(depth: int) -> str:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return _text(output={"schema": schema}, examples=[])


@pytest.mark.parametrize(
    "text",
    [_deep_flow(200), _deep_flow(10_000), _deep_flow(100_000), _deep_block(300), _deep_schema(80)],
    ids=["flow-200", "flow-10000", "flow-100000", "block-300", "schema-80"],
)
def test_deeply_nested_yaml_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(text, source_name="deep.yaml")
    assert err.value.file == "deep.yaml"
    assert err.value.line is not None
    assert f"nested more than {MAX_SPEC_DEPTH} levels" in str(err.value)
    assert "flatten" in err.value.fix


def test_a_schema_too_deep_for_contracts_names_its_field() -> None:
    depth = MAX_SCHEMA_DEPTH + 2  # within the YAML bound, past the schema bound
    with pytest.raises(SpecError) as err:
        parse_spec(_deep_schema(depth), source_name="deep.yaml")
    assert f"nested more than {MAX_SCHEMA_DEPTH} levels" in str(err.value)
    assert err.value.field.startswith("output.schema.items.items")
    assert err.value.line is not None


def test_aliases_that_expand_without_bound_are_refused() -> None:
    layers = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    layers += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    text = "name: bomb\nversion: 1.0.0\n" + "\n".join(layers) + "\n"
    with pytest.raises(SpecError, match="expand to more than") as err:
        parse_spec(text, source_name="bomb.yaml")
    assert err.value.line is not None


def test_a_recursive_alias_is_refused() -> None:
    text = "name: loop\nversion: 1.0.0\nloop: &a [*a]\n"
    with pytest.raises(SpecError):
        parse_spec(text, source_name="loop.yaml")


def test_a_few_aliases_are_still_fine() -> None:
    text = "\n".join(
        [
            "name: ticket",
            "version: 1.0.0",
            "messages: [{role: user, content: '{{ text }}'}]",
            "examples:",
            "  - inputs: &refund {text: refund please}",
            "    output: billing",
            "tests:",
            "  - name: refund",
            "    inputs: *refund",
        ]
    )
    loaded = parse_spec(text, source_name="p.yaml")
    assert loaded.spec.tests[0].inputs == {"text": "refund please"}


def test_cli_push_of_deep_yaml_reports_instead_of_crashing(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(_deep_flow(50_000))
    runner = CliRunner(env={"TETHER_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    result = runner.invoke(app, ["prompts", "push", str(deep)])
    assert result.exit_code == 1
    assert f"{deep}:3" in result.stderr
    assert "nested more than" in result.stderr


def test_admin_push_of_deep_yaml_is_a_400(live: LiveGateway) -> None:
    response = httpx2.post(
        f"{live.url}/admin/prompts",
        json={"source": _deep_flow(10_000)},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "nested more than" in response.json()["error"]["message"]


# -- output.model ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["os:system", "subprocess:Popen", "tether.evals.services:Verdict", "..x:Model"]
)
def test_output_model_outside_the_allowed_modules_is_refused(path: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_text(output={"model": path}, examples=[]), source_name="m.yaml")
    assert err.value.field == "output.model"
    assert "prompt_model_modules" in str(err.value) or "module:Class" in str(err.value)


def test_a_refused_module_is_never_imported() -> None:
    module = "tabnanny"  # a standard module nothing here imports
    assert module not in sys.modules
    with pytest.raises(SpecError, match="was not imported"):
        parse_spec(_text(output={"model": f"{module}:Check"}, examples=[]), source_name="m.yaml")
    spec = PromptSpec.model_validate(spec_data(output={"model": f"{module}:Check"}))
    with pytest.raises(SpecError):
        CompiledPrompt.compile(spec)
    with pytest.raises(SpecError):
        compare(spec, spec)
    assert module not in sys.modules


def test_prefixes_match_whole_package_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for package in ("contracts_ok", "contracts_okish"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(
            "from pydantic import BaseModel\n\n\nclass Out(BaseModel):\n    answer: str\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    allowed = ["contracts_ok"]
    loaded = parse_spec(
        _text(output={"model": "contracts_ok:Out"}, examples=[]),
        source_name="m.yaml",
        model_modules=allowed,
    )
    assert loaded.compiled.contract is not None
    with pytest.raises(SpecError, match="not in prompt_model_modules"):
        parse_spec(
            _text(output={"model": "contracts_okish:Out"}, examples=[]),
            source_name="m.yaml",
            model_modules=allowed,
        )
    assert "contracts_okish" not in sys.modules
    sys.modules.pop("contracts_ok", None)


# -- templates -------------------------------------------------------------------------------


HUGE = {
    "repeat a string": '{{ "x" * 50000000 }}',
    "repeat, number first": '{{ 50000000 * "x" }}',
    "repeat a list": '{{ ["x"] * 50000000 }}',
    "output in a loop": '{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}',
    "text in a loop": "{% for i in range(100000) %}" + "x" * 50 + "{% endfor %}",
    "set block": '{% set s %}{% for i in range(1000) %}{{ "y" * 100000 }}{% endfor %}{% endset %}'
    "{{ s|length }}",
    "doubling with ~": '{% set ns = namespace(s="x" * 1000) %}{% for i in range(40) %}'
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "doubling with +": '{% set ns = namespace(s="x" * 1000) %}{% for i in range(40) %}'
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "center filter": '{{ "x"|center(50000000) }}',
    "ljust method": '{{ "x".ljust(50000000) }}',
    "str.format width": '{{ "{:>50000000}".format(1) }}',
    "format filter width": '{{ "%50000000d"|format(1) }}',
    "percent width": '{{ "%50000000d" % 1 }}',
    "join": '{{ (["y" * 100000] * 1000)|join }}',
    "replace the empty string": '{{ ("x" * 300000)|replace("", "yyyy") }}',
    "power": "{{ 2 ** 100000000 }}",
    "squaring": "{% set ns = namespace(n=2) %}{% for i in range(64) %}"
    "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
    "nested ranges": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "a list of big strings": '{% set x = "x" * 999999 %}{% set y = [x] * 999999 %}{{ y }}',
    "printing a shared list": '{% set x = ["x" * 999999] %}{{ (x + x + x + x)|string }}',
    "tojson indent": "{{ [1]|tojson(indent=100000000) }}",
}


@pytest.mark.parametrize("template", list(HUGE.values()), ids=list(HUGE))
def test_templates_cannot_build_huge_values(template: str) -> None:
    messages = [{"role": "user", "content": template}]
    tracemalloc.start()
    try:
        compiled = parse_spec(_text(messages=messages, examples=[]), source_name="t.yaml").compiled
        with pytest.raises(RenderError) as err:
            compiled.render({"text": "x"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.name == "ticket"
    assert "ticket" in str(err.value)
    assert peak < 20 * MAX_RENDERED_CHARS  # refused before the value was built


def test_the_budget_covers_the_whole_prompt() -> None:
    chunk = "z" * (MAX_RENDERED_CHARS // 2 + 1)
    messages = [
        {"role": "system", "content": "{{ text }}"},
        {"role": "user", "content": "{{ text }}"},
    ]
    compiled = parse_spec(_text(messages=messages, examples=[]), source_name="t.yaml").compiled
    with pytest.raises(RenderError, match="characters"):
        compiled.render({"text": chunk})


@pytest.mark.parametrize("template", ["{{ 1 / 0 }}", "{{ '%d' % text }}", "{{ [][3] }}"])
def test_template_runtime_errors_are_render_errors(template: str) -> None:
    messages = [{"role": "user", "content": template}]
    compiled = parse_spec(_text(messages=messages, examples=[]), source_name="t.yaml").compiled
    with pytest.raises(RenderError, match="ticket"):
        compiled.render({"text": "x"})


def test_ordinary_templates_still_render() -> None:
    template = (
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ text ~ '!' }} {{ text * 3 }} "
        "{{ '%05d'|format(42) }} {{ '{:>4}'.format(7) }} {{ ['a', 'b']|join('-') }} "
        "{{ text|center(5) }} {{ 2 ** 10 }} {{ 'ab'|replace('a', 'c') }}"
    )
    messages = [{"role": "user", "content": template}]
    compiled = parse_spec(_text(messages=messages, examples=[]), source_name="t.yaml").compiled
    (message,) = compiled.render({"text": "ok"})
    assert message.content == f"012 ok! okokok 00042    7 a-b {'ok'.center(5)} 1024 cb"

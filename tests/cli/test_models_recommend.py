"""`tether models recommend`: fake models with known prices and known mistakes.

- cheap ($0.1/$0.2 per M tokens) calls sarcasm positive: 3 of 4 cases;
- premium ($10/$20) gets every case right;
- pricey ($50/$100) makes cheap's mistake and answers slowly: beaten on every axis by premium;
- the built-in names are faked too: `local` refuses the schema, `local-embed` only embeds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether import Client, FakeProvider, Settings
from tether.cli import app
from tether.errors import SchemaProblem
from tether.messages import ProviderCall
from tether.providers.base import Capabilities

runner = CliRunner()

SPEC = """\
name: review-sentiment
version: 1.0.0
inputs:
  type: object
  properties: {comment: {type: string, minLength: 1}}
  required: [comment]
output:
  schema:
    type: object
    properties: {sentiment: {enum: [positive, negative]}}
    required: [sentiment]
messages:
  - {role: system, content: Classify the review.}
  - {role: user, content: "{{ comment }}"}
tests:
  - {name: praise, inputs: {comment: Lovely food}, assert: [{type: equals, field: sentiment, value: positive}]}
  - {name: complaint, inputs: {comment: Cold soup}, assert: [{type: equals, field: sentiment, value: negative}]}
  - {name: rude, inputs: {comment: Rude waiter}, assert: [{type: equals, field: sentiment, value: negative}]}
  - {name: sarcasm, inputs: {comment: "Oh great, another hour wait"}, assert: [{type: equals, field: sentiment, value: negative}]}
"""  # noqa: E501

CONFIG = """\
default_model = "premium"
data_dir = "{data}"
cache_dir = "{cache}"
[models.cheap]
provider = "fake"
price = {{input_per_million = 0.1, output_per_million = 0.2}}
[models.premium]
provider = "fake"
price = {{input_per_million = 10.0, output_per_million = 20.0}}
[models.pricey]
provider = "fake"
price = {{input_per_million = 50.0, output_per_million = 100.0}}
"""

NEGATIVE = ("Cold", "Rude", "Oh great")


def _answer(call: ProviderCall, *, fooled_by_sarcasm: bool) -> str:
    text = call.messages[-1].content
    negative = any(text.startswith(word) for word in NEGATIVE)
    if fooled_by_sarcasm and text.startswith("Oh great"):
        negative = False
    return json.dumps({"sentiment": "negative" if negative else "positive"})


def _slow_and_fooled(call: ProviderCall) -> str:
    time.sleep(0.02)
    return _answer(call, fooled_by_sarcasm=True)


def fakes() -> dict[str, FakeProvider]:
    return {
        "cheap": FakeProvider(respond=lambda c: _answer(c, fooled_by_sarcasm=True)),
        "premium": FakeProvider(respond=lambda c: _answer(c, fooled_by_sarcasm=False)),
        "pricey": FakeProvider(respond=_slow_and_fooled),
        "local": FakeProvider(problems=[SchemaProblem("enum", "/properties/sentiment", "no")]),
        "local-small": FakeProvider(respond=lambda c: "not json"),
        "local-embed": FakeProvider(capabilities=Capabilities(supports_chat=False)),
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path with the spec file and a tether.toml; the CLI's client gets the fakes."""
    (tmp_path / "review.yaml").write_text(SPEC)
    config = tmp_path / "tether.toml"
    config.write_text(CONFIG.format(data=tmp_path / "data", cache=tmp_path / "cache"))
    providers = fakes()

    def open_client(path: Path | None) -> Client:
        return Client(Settings.load(path, environ={}), providers=providers)

    monkeypatch.setattr("tether.cli.recommend.open_client", open_client)
    monkeypatch.setattr("tether.cli.common.stdout._width", 160)  # whole table rows, unwrapped
    return tmp_path


def invoke(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        ["models", "recommend", str(project / "review.yaml"), "-c", str(project / "tether.toml"),
         *args],
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def _row(stdout: str, model: str) -> str:
    return next(line for line in stdout.splitlines() if f" {model} " in line)


def test_recommends_the_cheapest_model_that_passes_every_case(project: Path) -> None:
    code, out, err = invoke(project, "--models", "cheap,premium,pricey")
    assert code == 0, out + err
    assert "3/4 (75%)" in _row(out, "cheap")
    assert "4/4 (100%)" in _row(out, "premium")
    assert "recommended: premium passes 100%" in out
    # pricey is dominated by premium (better, cheaper, faster): off the frontier
    assert "Pareto frontier: cheap, premium" in out
    assert _row(out, "pricey").rstrip(" │").endswith("ms")


def test_a_lower_threshold_recommends_the_cheap_model(project: Path) -> None:
    code, out, _ = invoke(project, "--models", "premium,cheap", "--threshold", "0.75")
    assert code == 0
    assert "recommended: cheap passes 75% (threshold 75%)" in out


def test_no_model_meeting_the_threshold_exits_1_and_says_so(project: Path) -> None:
    code, out, _ = invoke(project, "--models", "cheap,pricey")
    assert code == 1
    assert "no model meets the threshold of 100% (best: cheap at 75%)" in out
    assert "recommended" not in out


def test_default_candidates_skip_refusing_and_embedding_models(project: Path) -> None:
    code, out, err = invoke(project, "--threshold", "0.7")
    assert code == 0, out + err
    assert "skipped local: pre-flight refuses the output contract: enum" in err
    assert "skipped local-embed: not a chat model" in err
    # local-small accepts the contract but never writes JSON: it runs and fails every case
    assert "0/4 (0%)" in _row(out, "local-small")
    assert "4 " in _row(out, "local-small").split("0/4 (0%)")[1]  # four errored cases
    assert "recommended: cheap" in out


def test_costs_per_request_and_per_1000_follow_the_prices(project: Path) -> None:
    code, out, _ = invoke(project, "--models", "cheap,premium")
    assert code == 0
    # the same words in and out on both; premium's prices are 100x cheap's
    cheap_1000 = float(_row(out, "cheap").split("$")[2].split()[0])
    premium_1000 = float(_row(out, "premium").split("$")[2].split()[0])
    assert premium_1000 == pytest.approx(100 * cheap_1000, rel=1e-6)


def test_plot_writes_png_and_self_contained_html(project: Path) -> None:
    target = project / "out" / "frontier"
    code, _out, _ = invoke(project, "--models", "cheap,premium,pricey", "--plot", str(target))
    assert code == 0
    png = (project / "out" / "frontier.png").read_bytes()
    page = (project / "out" / "frontier.html").read_text()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "data:image/png;base64," in page
    assert "<script" not in page
    assert "http" not in page.replace("http-equiv", "")
    assert "recommended: <strong>premium</strong>" in page


def test_dataset_cases_replace_the_specs(project: Path) -> None:
    cases = project / "cases.jsonl"
    rows = [
        {"inputs": {"comment": "Lovely"}, "expected": {"sentiment": "positive"}},
        {"inputs": {"comment": "Cold fries"}, "expected": {"sentiment": "negative"}},
    ]
    cases.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    code, out, _ = invoke(project, "--models", "cheap,premium", "--dataset", str(cases))
    assert code == 0
    assert "2 cases" in out
    assert "2/2 (100%)" in _row(out, "cheap")
    assert "recommended: cheap" in out


def test_a_bad_dataset_line_is_named(project: Path) -> None:
    cases = project / "cases.jsonl"
    cases.write_text('{"inputs": {"comment": "ok"}, "expected": "positive"}\n{"inputs": {}}\n')
    code, _, err = invoke(project, "--models", "cheap", "--dataset", str(cases))
    assert code == 1
    assert "cases.jsonl: line 2: missing 'expected'" in err
    assert "fix:" in err


def test_dataset_inputs_must_meet_the_inputs_schema(project: Path) -> None:
    cases = project / "cases.jsonl"
    cases.write_text('{"inputs": {"comment": ""}, "expected": {"sentiment": "negative"}}\n')
    code, _, err = invoke(project, "--models", "cheap", "--dataset", str(cases))
    assert code == 1
    assert "line 1.inputs: does not meet the prompt's inputs schema" in err


def test_an_unknown_model_is_an_error(project: Path) -> None:
    code, _, err = invoke(project, "--models", "cheap,nope")
    assert code == 1
    assert "unknown model 'nope'" in err


def test_models_alone_still_lists_the_models(project: Path) -> None:
    result = runner.invoke(app, ["models", "--config", str(project / "tether.toml")])
    assert result.exit_code == 0
    assert "premium" in result.stdout
    assert "fake" in result.stdout

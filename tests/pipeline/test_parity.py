"""The same prompt, router, fallback and budget behave the same through every entry point:
`client.generate`, `client.run`, the CLI, `/v1/chat/completions` (plain and streamed, with the
official openai SDK) and `/v1/prompts/{name}/run`; each one leaves a request-log row.

The router sends this input to `cheap`, whose upstream is down (503, retried once), so the
call falls back to `premium`: every entry point must show the same routing decision, the same
three billed attempts and the same cost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from tests.pipeline.upstreams import Reply, RuleUpstream
from tests.server.conftest import live_gateway
from tether import Client, Settings
from tether.cli import app
from tether.errors import BudgetExhausted
from tether.store.tables import requests

PROMPT = "triage-sentiment"
COMMENT = "Great service, thank you"
ANSWER = {"sentiment": "positive"}
SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"enum": ["positive", "neutral", "negative"]}},
    "required": ["sentiment"],
    "additionalProperties": False,
}
# premium: $2 per million in, $8 out; its answer bills 10 + 5 tokens
PREMIUM_COST = (10 * 2.0 + 5 * 8.0) / 1_000_000
SPEC = f"""
name: {PROMPT}
version: 1.0.0
model: router:triage
params: {{max_tokens: 32}}
inputs:
  type: object
  properties: {{comment: {{type: string}}}}
  required: [comment]
output:
  schema: {json.dumps(SCHEMA)}
messages:
  - role: user
    content: "{{{{ comment }}}}"
"""


def _config(tmp_path: Path, upstream: RuleUpstream, budget_usd: float | None = None) -> Path:
    budget = f"\n[[budgets]]\nprompt = {PROMPT!r}\nusd = {budget_usd}\nperiod = 'day'\n"
    text = f"""
data_dir = "{tmp_path / "data"}"
default_model = "premium"

[calls]
retry_base_s = 0.001
retry_cap_s = 0.01

[models.cheap]
provider = "openai"
base_url = "{upstream.base_url}"
upstream_model = "cheap-up"
api_key_env = "PARITY_KEY"
max_retries = 1
fallbacks = ["premium"]
price = {{input_per_million = 0.1, output_per_million = 0.4}}

[models.premium]
provider = "openai"
base_url = "{upstream.base_url}"
upstream_model = "premium-up"
api_key_env = "PARITY_KEY"
max_retries = 0
price = {{input_per_million = 2.0, output_per_million = 8.0}}

[routers.triage]
policy = "rules"
default = "cheap"
[[routers.triage.rules]]
keywords = ["refund"]
model = "premium"
{budget if budget_usd is not None else ""}
"""
    path = tmp_path / "tether.toml"
    path.write_text(text)
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "prompts" / f"{PROMPT}.yaml").write_text(SPEC)
    return path


@pytest.fixture
def upstream() -> Iterator[RuleUpstream]:
    server = RuleUpstream(
        {
            "cheap-up": lambda body: Reply(
                503, '{"error": {"message": "overloaded"}}', headers={"retry-after": "0"}
            ),
            "premium-up": lambda body: Reply(content=json.dumps(ANSWER)),
        }
    )
    yield server
    server.close()


@pytest.fixture
def config(tmp_path: Path, upstream: RuleUpstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARITY_KEY", "sk-parity")
    path = _config(tmp_path, upstream)
    _push(path, tmp_path)
    return path


def _push(config: Path, tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["prompts", "push", str(tmp_path / "prompts"),
                                       "--config", str(config)])  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    outcome = CliRunner().invoke(app, ["prompts", "label", PROMPT, "1.0.0", "production",
                                       "-r", "test", "--config", str(config)])  # fmt: skip
    assert outcome.exit_code == 0, outcome.output


def _rows(config: Path) -> list[Any]:
    settings = Settings.load(config)
    engine = create_engine(settings.database)
    with engine.connect() as conn:
        found = conn.execute(select(requests).order_by(requests.c.at)).all()
    engine.dispose()
    return list(found)


def _library_calls(config: Path) -> None:
    with Client(Settings.load(config)) as client:
        generated = client.generate(COMMENT, contract=SCHEMA, model="router:triage", max_tokens=32)
        assert generated.output == ANSWER
        ran = client.run(PROMPT, {"comment": COMMENT})
        assert ran.output == ANSWER
        assert len(ran.attempts) == 3  # cheap, cheap retried, premium
        assert ran.cost_usd == pytest.approx(PREMIUM_COST)


def _cli_calls(config: Path, schema_file: Path) -> None:
    runner = CliRunner()
    generated = runner.invoke(app, ["generate", COMMENT, "--model", "router:triage",
                                    "--schema", str(schema_file), "--max-tokens", "32",
                                    "--config", str(config)])  # fmt: skip
    assert generated.exit_code == 0, generated.output
    assert json.loads(generated.stdout) == ANSWER
    inputs = json.dumps({"comment": COMMENT})
    ran = runner.invoke(
        app, ["prompts", "run", PROMPT, "--inputs", inputs, "--config", str(config)]
    )
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout) == ANSWER


def _gateway_calls(config: Path) -> None:
    with live_gateway(Settings.load(config)) as live:
        sdk = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
        body: dict[str, Any] = {
            "model": "router:triage",
            "messages": [{"role": "user", "content": COMMENT}],
            "max_tokens": 32,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "sentiment", "schema": SCHEMA},
            },
        }
        plain = sdk.chat.completions.create(**body)
        assert json.loads(plain.choices[0].message.content or "") == ANSWER
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in sdk.chat.completions.create(**body, stream=True)
            if chunk.choices
        )
        assert json.loads(streamed) == ANSWER
        ran = sdk.post(f"/prompts/{PROMPT}/run", body={"inputs": {"comment": COMMENT}},
                       cast_to=object)  # fmt: skip
        assert ran["output"] == ANSWER  # type: ignore[index]
        assert live.gateway.log.flush(5)


def test_every_entry_point_routes_falls_back_and_records_alike(
    config: Path, tmp_path: Path, upstream: RuleUpstream
) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(SCHEMA))
    _library_calls(config)
    _cli_calls(config, schema_file)
    _gateway_calls(config)

    rows = [r for r in _rows(config) if r.endpoint != "feedback"]
    assert [r.endpoint for r in rows] == [
        "library.generate", "library.run", "cli.generate", "cli.run",
        "chat.completions", "chat.completions", "prompts.run",
    ]  # fmt: skip
    assert [r.stream for r in rows] == [False] * 5 + [True, False]
    for row in rows:
        assert row.status == 200, row
        assert json.loads(row.output) == ANSWER
        assert row.valid is True
        route = json.loads(row.route)
        assert (route["policy"], route["model"], route["answered_by"]) == (
            "rules", "cheap", "premium"
        )  # fmt: skip
        assert route["skipped"][0].startswith("cheap:")
        attempts = json.loads(row.attempts)
        assert [a["model"] for a in attempts] == ["cheap", "cheap", "premium"]
        assert row.cost_usd == pytest.approx(PREMIUM_COST)
    assert upstream.calls("cheap-up") == 2 * len(rows)
    assert upstream.calls("premium-up") == len(rows)


def test_a_prompt_budget_refuses_alike_everywhere(
    tmp_path: Path, upstream: RuleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARITY_KEY", "sk-parity")
    # Less than one request's maximum (32 output tokens at premium's $8/M alone is $2.6e-4).
    config = _config(tmp_path, upstream, budget_usd=0.0001)
    _push(config, tmp_path)
    with Client(Settings.load(config)) as client, pytest.raises(BudgetExhausted) as refused:
        client.run(PROMPT, {"comment": COMMENT})
    assert f"prompt:{PROMPT}" in refused.value.message
    inputs = json.dumps({"comment": COMMENT})
    cli = CliRunner().invoke(
        app, ["prompts", "run", PROMPT, "--inputs", inputs, "--config", str(config)]
    )
    assert cli.exit_code == 1
    assert f"prompt:{PROMPT}" in cli.output
    with live_gateway(Settings.load(config)) as live:
        sdk = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
        with pytest.raises(openai.RateLimitError) as http:
            sdk.post(f"/prompts/{PROMPT}/run", body={"inputs": {"comment": COMMENT}},
                     cast_to=object)  # fmt: skip
        assert http.value.body["code"] == "budget_exhausted"  # type: ignore[index]
        assert live.gateway.log.flush(5)
    rows = _rows(config)
    assert [(r.endpoint, r.status) for r in rows] == [
        ("library.run", 429), ("cli.run", 429), ("prompts.run", 429)
    ]  # fmt: skip
    assert upstream.calls("cheap-up") == upstream.calls("premium-up") == 0

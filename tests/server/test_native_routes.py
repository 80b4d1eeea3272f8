"""Prompt runs, feedback, the admin API, tether's own client through the gateway."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import select

from tether import Client, ModelSettings, Settings
from tether.store.tables import feedback

from .conftest import LiveGateway

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "prompts" / "feedback-sentiment" / "1.0.0.yaml").read_text()


def post(live: LiveGateway, path: str, body: object, key: str | None = None) -> httpx2.Response:
    admin = path.startswith("/admin")
    headers = live.admin if admin else {"authorization": f"Bearer {key or live.key}"}
    return httpx2.post(f"{live.url}{path}", json=body, headers=headers, timeout=30)


def test_admin_push_label_and_run(live: LiveGateway) -> None:
    pushed = post(live, "/admin/prompts", {"source": SPEC, "message": "via api"})
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["version"] == "1.0.0"
    assert post(live, "/admin/prompts", {"source": SPEC}).status_code == 200  # unchanged
    labelled = post(
        live,
        "/admin/prompts/feedback-sentiment/labels",
        {"label": "production", "version": "1.0.0"},
    )
    assert labelled.status_code == 200, labelled.text
    live.fake.enqueue('{"sentiment": "negative", "confidence": 0.9}')
    run = post(
        live,
        "/v1/prompts/feedback-sentiment/run",
        {"inputs": {"comment": "Refund me."}, "model": "fake"},
    )
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["output"] == {"sentiment": "negative", "confidence": 0.9}
    assert (body["prompt"], body["version"]) == ("feedback-sentiment", "1.0.0")
    assert body["request_id"] == run.headers["x-tether-request-id"]
    url = f"{live.url}/admin/prompts/feedback-sentiment"
    detail = httpx2.get(url, headers=live.admin).json()
    assert detail["labels"] == {"production": "1.0.0"}


def test_prompt_run_errors(live: LiveGateway) -> None:
    assert post(live, "/v1/prompts/nope/run", {"inputs": {}}).status_code == 404
    post(live, "/admin/prompts", {"source": SPEC})
    post(
        live,
        "/admin/prompts/feedback-sentiment/labels",
        {"label": "production", "version": "1.0.0"},
    )
    bad = post(
        live, "/v1/prompts/feedback-sentiment/run", {"inputs": {"text": "x"}, "model": "fake"}
    )
    assert bad.status_code == 400
    assert "inputs schema" in bad.json()["error"]["message"]
    _, scoped = live.gateway.keys.create("other prompts only", prompts=["other"])
    denied = post(
        live,
        "/v1/prompts/feedback-sentiment/run",
        {"inputs": {"comment": "x"}, "model": "fake"},
        scoped,
    )
    assert denied.status_code == 403


def test_bad_spec_through_the_admin_api(live: LiveGateway) -> None:
    response = post(live, "/admin/prompts", {"source": "name: x\nversion: one\nmessages: []\n"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_spec"


def test_feedback_is_attached_to_a_request(live: LiveGateway) -> None:
    chat = post(
        live,
        "/v1/chat/completions",
        {"model": "fake", "messages": [{"role": "user", "content": "hi"}]},
    )
    request_id = chat.headers["x-tether-request-id"]
    given = post(live, "/v1/feedback", {"request_id": request_id, "score": 0.5, "label": "good"})
    assert given.status_code == 200, given.text
    with live.gateway.engine.connect() as conn:
        (row,) = conn.execute(select(feedback)).all()
    assert (row.request_id, row.score, row.label) == (request_id, 0.5, "good")
    assert post(live, "/v1/feedback", {"request_id": "req_missing", "score": 1}).status_code == 404
    assert post(live, "/v1/feedback", {"request_id": request_id}).status_code == 400


def test_admin_keys_api_never_shows_secrets(live: LiveGateway) -> None:
    created = post(live, "/admin/keys", {"name": "ci", "models": ["fake"], "rpm": 10})
    assert created.status_code == 201
    secret = created.json()["secret"]
    listed = httpx2.get(f"{live.url}/admin/keys", headers=live.admin).text
    assert secret not in listed
    assert created.json()["id"] in listed
    key_id = created.json()["id"]
    assert httpx2.delete(f"{live.url}/admin/keys/{key_id}", headers=live.admin).json()["revoked_at"]
    assert (
        httpx2.delete(f"{live.url}/admin/keys/key_missing", headers=live.admin).status_code == 404
    )


class Answer(BaseModel):
    answer: str


def test_tethers_own_client_through_the_gateway(live: LiveGateway, tmp_path: Path) -> None:
    gateway_model = ModelSettings(
        provider="openai",
        base_url=live.v1,
        upstream_model="fake",
        max_retries=0,
        api_key=SecretStr(live.key),
    )
    settings = Settings(data_dir=tmp_path, default_model="gw", models={"gw": gateway_model})
    live.fake.enqueue('{"answer": "42"}')
    with Client(settings) as client:
        result = client.generate("What is it?", contract=Answer)
    assert result.output == Answer(answer="42")
    assert result.provider == "openai"


@pytest.mark.local_model
def test_local_model_behind_the_gateway(live: LiveGateway) -> None:
    schema = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative"]}},
        "required": ["sentiment"],
    }
    response = post(
        live,
        "/v1/chat/completions",
        {
            "model": "local",
            "messages": [{"role": "user", "content": "I love this phone."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": schema},
            },
            "max_tokens": 32,
        },
    )
    assert response.status_code == 200, response.text
    content = response.json()["choices"][0]["message"]["content"]
    assert json.loads(content)["sentiment"] in {"positive", "negative"}

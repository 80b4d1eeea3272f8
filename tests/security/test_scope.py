"""Scope and ownership: a key learns nothing about prompts outside its scope, may not use raw
chat when scoped to prompts only, and may leave feedback only on its own requests (an admin on
any), at its own rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import select

from tests.server.conftest import LiveGateway
from tether.store.tables import feedback, requests

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "prompts" / "feedback-sentiment" / "1.0.0.yaml").read_text()


def _post(live: LiveGateway, path: str, body: object, key: str) -> httpx2.Response:
    return httpx2.post(
        f"{live.url}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def _key(live: LiveGateway, **scope: Any) -> str:
    return live.gateway.keys.create("scoped", **scope)[1]


def _publish(live: LiveGateway) -> None:
    admin = {**live.admin, "content-type": "application/json"}
    pushed = httpx2.post(f"{live.url}/admin/prompts", json={"source": SPEC}, headers=admin)
    assert pushed.status_code in (200, 201), pushed.text
    label = {"label": "production", "version": "1.0.0"}
    moved = httpx2.post(
        f"{live.url}/admin/prompts/feedback-sentiment/labels", json=label, headers=admin
    )
    assert moved.status_code == 200, moved.text


def test_a_key_scoped_to_other_prompts_learns_nothing(live: LiveGateway) -> None:
    _publish(live)
    other = _key(live, prompts=["something-else"])
    answers = [
        _post(live, f"/v1/prompts/{name}/run", {"inputs": inputs}, other)
        for name, inputs in (
            ("feedback-sentiment", {"comment": "fine"}),  # exists, valid inputs
            ("feedback-sentiment", {"wrong": 1}),  # exists, inputs that would not render
            ("no-such-prompt", {}),  # does not exist
        )
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    bodies = {a.json()["error"]["message"].replace("no-such-prompt", "X") for a in answers}
    bodies = {b.replace("feedback-sentiment", "X") for b in bodies}
    assert len(bodies) == 1, bodies  # the same answer whether the prompt exists or not
    assert "schema" not in answers[1].text
    assert "comment" not in answers[1].text
    assert live.fake.calls == []


def test_a_key_scoped_to_prompts_only_cannot_use_raw_chat(live: LiveGateway) -> None:
    _publish(live)
    scoped = _key(live, prompts=["feedback-sentiment"])
    chat = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    assert _post(live, "/v1/chat/completions", chat, scoped).status_code == 403
    live.fake.enqueue('{"sentiment": "positive", "confidence": 0.9}')
    run = {"inputs": {"comment": "Great."}, "model": "fake"}
    ran = _post(live, "/v1/prompts/feedback-sentiment/run", run, scoped)
    assert ran.status_code == 200, ran.text
    both = _key(live, prompts=["feedback-sentiment"], models=["fake"])
    assert _post(live, "/v1/chat/completions", chat, both).status_code == 200


def _chat_id(live: LiveGateway, key: str) -> str:
    chat = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    answered = _post(live, "/v1/chat/completions", chat, key)
    assert answered.status_code == 200, answered.text
    return answered.headers["x-tether-request-id"]


def test_feedback_only_from_the_key_that_made_the_request(live: LiveGateway) -> None:
    mine = _chat_id(live, live.key)
    stranger = _key(live)
    taken = _post(live, "/v1/feedback", {"request_id": mine, "score": 0}, stranger)
    missing = _post(live, "/v1/feedback", {"request_id": "req_none", "score": 0}, stranger)
    assert (taken.status_code, missing.status_code) == (404, 404)
    assert taken.json()["error"]["message"].replace(mine, "X") == missing.json()["error"][
        "message"
    ].replace("req_none", "X")
    assert (
        _post(live, "/v1/feedback", {"request_id": mine, "score": 1}, live.key).status_code == 200
    )
    admin = httpx2.post(
        f"{live.url}/v1/feedback",
        json={"request_id": mine, "label": "reviewed"},
        headers=live.admin,
    )
    assert admin.status_code == 200, admin.text
    with live.gateway.engine.connect() as conn:
        rows = conn.execute(select(feedback.c.score, feedback.c.label)).all()
    assert sorted(rows, key=str) == sorted([(1.0, None), (None, "reviewed")], key=str)


def test_feedback_is_rate_limited_and_logged(live: LiveGateway) -> None:
    limited = _key(live, rpm=2)
    request_id = _chat_id(live, limited)
    first = _post(live, "/v1/feedback", {"request_id": request_id, "score": 1}, limited)
    second = _post(live, "/v1/feedback", {"request_id": request_id, "score": 1}, limited)
    assert (first.status_code, second.status_code) == (200, 429)
    assert "retry-after" in second.headers
    assert live.gateway.log.flush(5)
    with live.gateway.engine.connect() as conn:
        statuses = conn.execute(
            select(requests.c.status).where(requests.c.endpoint == "feedback")
        ).scalars()
        assert sorted(statuses) == [200, 429]

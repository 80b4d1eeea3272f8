"""Hostile bodies: every JSONTestSuite file, every naughty string in every string field."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx2
from sqlalchemy import select

from tether.store.tables import requests

from .conftest import LiveGateway


def test_json_test_suite_bodies(live: LiveGateway, data_dir: Path) -> None:
    headers = {"authorization": f"Bearer {live.key}", "content-type": "application/json"}
    cases = sorted((data_dir / "json" / "JSONTestSuite").glob("*.json"))
    statuses: dict[str, int] = {}
    with httpx2.Client(base_url=live.url, headers=headers, timeout=30) as http:
        for case in cases:
            response = http.post("/v1/chat/completions", content=case.read_bytes())
            statuses[case.name] = response.status_code
            assert response.status_code < 500, (case.name, response.text)
            if response.status_code >= 400:
                assert "error" in response.json(), case.name
        assert http.get("/healthz").status_code == 200  # the worker stayed up
    rejected = [name for name, status in statuses.items() if name.startswith("n_") and status < 400]
    assert rejected == []


def test_naughty_strings_in_every_field(live: LiveGateway, data_dir: Path) -> None:
    strings: list[str] = json.loads((data_dir / "json" / "blns" / "blns.json").read_text("utf-8"))
    headers = {"authorization": f"Bearer {live.key}"}
    sent: dict[str, str] = {}
    with httpx2.Client(base_url=live.url, headers=headers, timeout=30) as http:
        for text in strings:
            bodies = [
                {"model": "fake", "messages": [{"role": "user", "content": text}]},
                {
                    "model": "fake",
                    "messages": [
                        {"role": "system", "content": text},
                        {"role": "user", "content": "x"},
                    ],
                },
                {"model": text, "messages": [{"role": "user", "content": "x"}]},
                {"model": "fake", "messages": [{"role": "user", "content": "x"}], "stop": text},
                {"model": "fake", "messages": [{"role": "user", "content": "x"}], "user": text},
            ]
            for body in bodies:
                response = http.post("/v1/chat/completions", json=body)
                assert response.status_code < 500, (text, response.text)
            prompt = http.post(
                f"/v1/prompts/{quote(text, safe='')}/run" if text else "/v1/prompts/_/run",
                json={"inputs": {"comment": text}, "label": text or "x"},
            )
            assert prompt.status_code < 500, (text, prompt.text)
            feedback = http.post("/v1/feedback", json={"request_id": text or "x", "comment": text})
            assert feedback.status_code < 500, (text, feedback.text)
            first = http.post(
                "/v1/chat/completions",
                json={"model": "fake", "messages": [{"role": "user", "content": text}]},
            )
            sent[first.headers["x-tether-request-id"]] = text
    assert live.gateway.log.flush()
    with live.gateway.engine.connect() as conn:
        stored = dict(
            conn.execute(
                select(requests.c.id, requests.c.messages).where(requests.c.id.in_(list(sent)))
            ).all()
        )
    for request_id, text in sent.items():
        assert json.loads(stored[request_id])[0]["content"] == text  # byte-exact

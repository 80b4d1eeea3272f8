"""The cache's admin API: admins only, stats that count what requests filed and looked up,
invalidation by selector (and never by accident), bad bodies refused by field."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from .conftest import LiveGateway


def _chat(live: LiveGateway, text: str) -> httpx2.Response:
    body = {"model": "fake", "messages": [{"role": "user", "content": text}]}
    response = httpx2.post(
        f"{live.v1}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {live.key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def _stats(live: LiveGateway, **query: str) -> dict[str, Any]:
    response = httpx2.get(f"{live.url}/admin/cache/stats", params=query, headers=live.admin)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _invalidate(live: LiveGateway, body: object) -> httpx2.Response:
    return httpx2.post(f"{live.url}/admin/cache/invalidate", json=body, headers=live.admin)


def test_admin_credential_required(cached: LiveGateway) -> None:
    assert httpx2.get(f"{cached.url}/admin/cache/stats").status_code == 401
    as_key = {"authorization": f"Bearer {cached.key}"}
    assert httpx2.get(f"{cached.url}/admin/cache/stats", headers=as_key).status_code == 401
    refused = httpx2.post(f"{cached.url}/admin/cache/invalidate", json={"all": True})
    assert refused.status_code == 401


def test_stats_count_entries_and_hits_and_invalidate_drops_them(cached: LiveGateway) -> None:
    empty = _stats(cached)
    assert empty["backend"]["entries"] == 0
    assert empty["summary"]["total"]["lookups"] == 0
    _chat(cached, "What is the capital of France?")
    _chat(cached, "What is the capital of France?")
    _chat(cached, "What is the capital of Spain?")
    assert len(cached.fake.calls) == 2  # the repeat was served
    assert cached.gateway.log.flush()
    stats = _stats(cached)
    assert stats["backend"]["name"] == "local"
    assert stats["backend"]["entries"] == 2
    assert stats["backend"]["by_prompt"] == {"": 2}
    assert stats["backend"]["bytes"] > 0
    total = stats["summary"]["total"]
    assert (total["lookups"], total["exact_hits"], total["misses"]) == (3, 1, 2)
    assert total["hit_rate"] == pytest.approx(1 / 3)
    assert _stats(cached, prompt="faq")["backend"]["entries"] == 0

    (key,) = [k for k in cached.gateway.keys.list() if k.name == "test"]
    other = _invalidate(cached, {"key_id": "key_someone_else"})
    assert other.json()["dropped"] == 0
    dropped = _invalidate(cached, {"key_id": key.id, "model": "fake"})
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["dropped"] == 2
    assert _stats(cached)["backend"]["entries"] == 0
    _chat(cached, "What is the capital of France?")
    assert len(cached.fake.calls) == 3  # no longer served from the cache
    assert _invalidate(cached, {"all": True}).json()["dropped"] == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "all"),
        ({"all": False}, "all"),
        ({"all": "yes"}, "all"),
        ({"all": True, "prompt": "faq"}, "all"),
        ({"prompt": 5}, "prompt"),
        ({"tag": ""}, "tag"),
        ({"older_than_s": -1}, "older_than_s"),
        ({"older_than_s": "2h"}, "older_than_s"),
        ({"promt": "faq"}, "promt"),
    ],
)
def test_bad_invalidations_are_refused_by_field(
    cached: LiveGateway, body: dict[str, Any], param: str
) -> None:
    response = _invalidate(cached, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_bad_since_is_refused(cached: LiveGateway) -> None:
    response = httpx2.get(
        f"{cached.url}/admin/cache/stats", params={"since": "last week"}, headers=cached.admin
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "since"
    assert _stats(cached, since="2020-01-01")["summary"]["since"].startswith("2020-01-01")


def test_the_invalidate_body_is_documented(cached: LiveGateway) -> None:
    document = httpx2.get(f"{cached.url}/openapi.json").json()
    body = document["paths"]["/admin/cache/invalidate"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert {"prompt", "tag", "key_id", "older_than_s", "all"} <= set(schema["properties"])

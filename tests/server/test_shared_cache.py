"""One response cache shared by two `tether serve` processes through Redis: what one gateway
filed, the other serves, by exact key and by meaning; an invalidation on one holds on both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2
import pytest

from tests.conftest import REDIS_URL, fresh_postgres
from tests.pipeline.upstreams import Reply, RuleUpstream
from tests.server.conftest import ADMIN_TOKEN
from tests.server.test_shared_limits import MODEL, gateways
from tether.server.keys import KeyStore
from tether.store.engine import open_database


@pytest.fixture(scope="module")
def counted() -> Iterator[RuleUpstream]:
    server = RuleUpstream({MODEL: lambda body: Reply(content="Settings, then Security.")})
    yield server
    server.close()


def _ask(url: str, secret: str, question: str) -> httpx2.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
    headers = {"authorization": f"Bearer {secret}"}
    response = httpx2.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response


def test_two_gateways_share_one_cache(
    tmp_path: Path, counted: RuleUpstream, redis_prefix: str
) -> None:
    cache = f"""
[cache]
mode = "semantic"
backend = "redis"
redis_url = "{REDIS_URL}"
key_prefix = "{redis_prefix}"
"""
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres())
        engine = open_database(database_url)
        _, secret = KeyStore(engine).create("shared-cache")
        engine.dispose()
        first, second = stack.enter_context(
            gateways(tmp_path, 2, database_url, counted, {"store": "memory"}, cache)
        )
        before = counted.calls(MODEL)
        assert _ask(first, secret, "How do I reset my password?").headers["x-tether-cache"] == (
            "miss"
        )
        exact = _ask(second, secret, "How do I reset my password?")
        assert exact.headers["x-tether-cache"] == "exact"
        meaning = _ask(second, secret, "How can I reset my password?")
        assert meaning.headers["x-tether-cache"] == "semantic"
        assert meaning.json()["choices"][0]["message"]["content"] == "Settings, then Security."
        assert counted.calls(MODEL) - before == 1  # one upstream call for three answers

        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        dropped = httpx2.post(f"{first}/admin/cache/invalidate", json={"all": True},
                              headers=admin, timeout=30)  # fmt: skip
        assert dropped.status_code == 200, dropped.text
        assert (
            _ask(second, secret, "How can I reset my password?").headers["x-tether-cache"] == "miss"
        )

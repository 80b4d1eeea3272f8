"""The cache through the gateway: the openai SDK's streamed replay, Cache-Control, tenants,
and a prompt whose production label moves to a new version."""

from __future__ import annotations

import httpx2
import openai

from .conftest import LiveGateway

SPEC = """
name: faq
version: {version}
model: fake
cache: {{mode: semantic, compare: [question], tags: [faq]}}
inputs:
  type: object
  properties: {{question: {{type: string}}}}
  required: [question]
messages:
  - {{role: system, content: "Answer briefly ({version})."}}
  - {{role: user, content: "{{{{ question }}}}"}}
"""


def _sdk(live: LiveGateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.v1, api_key=key or live.key, max_retries=0)


def test_a_cached_stream_is_replayed_through_the_openai_sdk(cached: LiveGateway) -> None:
    cached.fake.enqueue("the quick brown fox jumps")
    sdk = _sdk(cached)
    runs = []
    for _ in range(2):
        with sdk.chat.completions.with_streaming_response.create(
            model="fake", messages=[{"role": "user", "content": "tell me"}], stream=True
        ) as response:
            decision = response.headers["x-tether-cache"]
            deltas = [
                chunk.choices[0].delta.content
                for chunk in response.parse()
                if chunk.choices and chunk.choices[0].delta.content
            ]
        runs.append((decision, deltas))
    (first, fresh), (second, replayed) = runs
    assert (first, second) == ("miss", "exact")
    assert replayed == fresh
    assert len(replayed) > 1  # replayed piece by piece, not as one block
    assert "".join(replayed) == "the quick brown fox jumps"


def test_cache_control_from_the_client(cached: LiveGateway) -> None:
    sdk = _sdk(cached)
    messages = [{"role": "user", "content": "hello"}]
    first = sdk.chat.completions.with_raw_response.create(model="fake", messages=messages)
    assert first.headers["x-tether-cache"] == "miss"
    again = sdk.chat.completions.with_raw_response.create(model="fake", messages=messages)
    assert again.headers["x-tether-cache"] == "exact"
    refused = sdk.chat.completions.with_raw_response.create(
        model="fake", messages=messages, extra_headers={"cache-control": "no-store"}
    )
    assert refused.headers["x-tether-cache"] == "bypass"
    fresh = sdk.chat.completions.with_raw_response.create(
        model="fake", messages=messages, extra_headers={"cache-control": "no-cache"}
    )
    assert fresh.headers["x-tether-cache"] == "bypass"
    assert fresh.parse().usage is not None


def test_keys_never_see_each_others_answers(cached: LiveGateway) -> None:
    cached.fake.enqueue("for a", "for b")
    _, other = cached.gateway.keys.create("other")
    messages = [{"role": "user", "content": "my account balance?"}]
    a = _sdk(cached).chat.completions.create(model="fake", messages=messages)
    b = _sdk(cached, other).chat.completions.create(model="fake", messages=messages)
    a_again = _sdk(cached).chat.completions.create(model="fake", messages=messages)
    assert (a.choices[0].message.content, b.choices[0].message.content) == ("for a", "for b")
    assert a_again.choices[0].message.content == "for a"


def _push(live: LiveGateway, version: str) -> None:
    body = {"source": SPEC.format(version=version)}
    pushed = httpx2.post(f"{live.url}/admin/prompts", json=body, headers=live.admin)
    assert pushed.status_code in (200, 201), pushed.text
    label = {"label": "production", "version": version}
    moved = httpx2.post(f"{live.url}/admin/prompts/faq/labels", json=label, headers=live.admin)
    assert moved.status_code == 200, moved.text


def _ask(live: LiveGateway, question: str) -> httpx2.Response:
    headers = {"authorization": f"Bearer {live.key}"}
    body = {"inputs": {"question": question}}
    response = httpx2.post(f"{live.url}/v1/prompts/faq/run", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_a_prompts_cache_follows_its_label(live: LiveGateway) -> None:
    live.fake.enqueue("answer 1", "answer 2")
    _push(live, "1.0.0")
    first = _ask(live, "How do I reset my password?")
    assert first.headers["x-tether-cache"] == "miss"
    paraphrase = _ask(live, "How can I reset my password?")
    assert paraphrase.headers["x-tether-cache"] == "semantic"
    assert paraphrase.json()["raw"] == first.json()["raw"] == "answer 1"
    _push(live, "1.1.0")  # production moves: answers of 1.0.0 are not served for it
    moved = _ask(live, "How do I reset my password?")
    assert moved.headers["x-tether-cache"] == "miss"
    assert (moved.json()["version"], moved.json()["raw"]) == ("1.1.0", "answer 2")

"""A prompt's own cache policy: the variables compared by meaning, a cache shared by every
key, a guard against opposite words, and a prompt calibrated on its own grades."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.asks import api_key
from tether import Client, FakeProvider, ModelSettings, Settings
from tether.cache.config import CacheSettings, SemanticSettings
from tether.cache.grades import Grade
from tether.pipeline.context import Ask, Context
from tether.prompts.loader import parse_spec
from tether.server.keys import ApiKey
from tether.store.cache_grades import DatabaseGradeStore

SPEC = """
name: support
version: 1.0.0
model: fake
cache: {cache}
inputs:
  type: object
  properties: {{question: {{type: string}}, language: {{type: string}}}}
  required: [question, language]
messages:
  - {{role: system, content: "Answer in {{{{ language }}}}."}}
  - {{role: user, content: "{{{{ question }}}}"}}
"""


def _run(client: Client, cache: str, inputs: dict[str, str], key: ApiKey | None = None) -> Context:
    compiled = parse_spec(SPEC.format(cache=cache), source_name="support.yaml").compiled
    ask = Ask("prompts.run", compiled=compiled, inputs=inputs, key=key)
    return asyncio.run(client.runtime.pipeline.run(Context(ask)))


def _kind(ctx: Context) -> str | None:
    return ctx.cache.kind if ctx.cache is not None else None


def _counting() -> FakeProvider:
    count = iter(range(1, 1000))
    return FakeProvider(respond=lambda call: f"answer {next(count)}")


def test_compare_names_the_text_and_the_other_variables_must_match(settings: Settings) -> None:
    policy = "{mode: semantic, compare: [question]}"
    with Client(settings, providers={"fake": _counting()}) as client:
        first = _run(client, policy, {"question": "How do I reset my password?",
                                      "language": "English"})  # fmt: skip
        paraphrase = _run(client, policy, {"question": "How can I reset my password?",
                                           "language": "English"})  # fmt: skip
        french = _run(client, policy, {"question": "How can I reset my password?",
                                       "language": "French"})  # fmt: skip
    assert (_kind(first), _kind(paraphrase), _kind(french)) == ("miss", "semantic", "miss")
    assert paraphrase.results[0].raw == "answer 1"
    assert french.results[0].raw == "answer 2"


def test_a_shared_prompt_cache_serves_everyapi_key(settings: Settings) -> None:
    question = {"question": "What are your opening hours?", "language": "English"}
    with Client(settings, providers={"fake": _counting()}) as client:
        own = [_run(client, "{mode: exact}", question, api_key(k)) for k in ("a", "b")]
        shared = [_run(client, "{mode: exact, shared: true}", question, api_key(k)) for k in "ab"]
    assert [_kind(c) for c in own] == ["miss", "miss"]
    assert [_kind(c) for c in shared] == ["miss", "exact"]


def test_the_polarity_guard_keeps_opposites_apart(settings: Settings) -> None:
    policy = "{mode: semantic, compare: [question]}"
    with Client(settings, providers={"fake": _counting()}) as client:
        _run(client, policy, {"question": "Did the shares close higher today?",
                              "language": "English"})  # fmt: skip
        lower = _run(client, policy, {"question": "Did the shares close lower today?",
                                      "language": "English"})  # fmt: skip
    assert _kind(lower) == "miss"
    assert lower.cache is not None
    assert lower.cache.vetoed_by == "polarity"


def test_another_embedder_serves_by_meaning_only_once_the_prompt_is_calibrated(
    settings: Settings,
) -> None:
    # The fake model embeds as letter counts: not MiniLM, so the bundled STS-B grades do not
    # hold for it and nothing is served by meaning until the prompt has grades of its own.
    models = {**settings.models, "letters": ModelSettings(provider="fake")}
    semantic = SemanticSettings(embedder="letters", min_grades=20)
    cache = CacheSettings(mode="semantic", semantic=semantic)
    custom = settings.model_copy(update={"models": models, "cache": cache})
    policy = "{mode: semantic, compare: [question]}"
    asks: list[dict[str, Any]] = [
        {"question": "How do I reset my password?", "language": "English"},
        {"question": "How do I reset my password ?!", "language": "English"},
        {"question": "How do I reset my password??", "language": "English"},
    ]
    # One answer for every call: the miss below grades its neighbour right.
    same = FakeProvider(respond=lambda call: "Open Settings, then Security.")
    with Client(custom, providers={"fake": same, "letters": FakeProvider()}) as client:
        _run(client, policy, asks[0])
        unsure = _run(client, policy, asks[1])
        assert _kind(unsure) == "miss"
        assert unsure.cache is not None
        assert "uncalibrated" in (unsure.cache.reason or "")
        grades = [
            Grade("support", 0.9 + i / 1000, 0.99, True, "pairs", None, time.time())
            for i in range(400)  # 400 right answers: a 99 % bound of 1.3 %, under δ = 2 %
        ]
        DatabaseGradeStore(client.runtime.engine).add(grades)
        client.runtime.cache.thresholds.forget()
        served = _run(client, policy, asks[2])
    assert _kind(served) == "semantic", json.dumps(served.cache.to_json() if served.cache else {})

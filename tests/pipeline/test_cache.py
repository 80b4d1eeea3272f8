"""The cache stage on the request path: exact and semantic hits, tenants, re-validation,
freshness, and what the request log says about each decision."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from tests.asks import api_key
from tether import Client, FakeProvider, Settings
from tether.cache.backends.base import Selector
from tether.cache.config import CacheSettings, SemanticSettings
from tether.pipeline.context import Ask, Context
from tether.server.keys import ApiKey
from tether.store.tables import requests

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def _cached(settings: Settings, mode: str = "exact", **semantic: Any) -> Settings:
    cache = CacheSettings(mode=mode, semantic=SemanticSettings(**semantic))  # type: ignore[arg-type]
    return settings.model_copy(update={"cache": cache})


def _rows(settings: Settings) -> list[Any]:
    engine = create_engine(settings.database)
    with engine.connect() as conn:
        found = list(conn.execute(select(requests).order_by(requests.c.id)).all())
    engine.dispose()
    return found


class Counting(FakeProvider):
    """A fake whose answer says how many calls it has made."""

    def __init__(self, answer: str = "answer") -> None:
        self.answered = 0
        super().__init__(respond=self._answer)
        self._text = answer

    def _answer(self, call: object) -> str:
        self.answered += 1
        return f"{self._text} {self.answered}"


@pytest.fixture
def counting() -> Counting:
    return Counting()


@pytest.fixture
def cached_client(settings: Settings, counting: Counting) -> Iterator[Client]:
    with Client(_cached(settings), providers={"fake": counting}) as client:
        yield client


def test_off_by_default_calls_the_model_every_time(settings: Settings, counting: Counting) -> None:
    with Client(settings, providers={"fake": counting}) as client:
        assert client.generate("hi").output == "answer 1"
        assert client.generate("hi").output == "answer 2"


def test_an_exact_repeat_is_served_without_a_call(
    cached_client: Client, counting: Counting, settings: Settings
) -> None:
    first = cached_client.generate("What is the capital of France?")
    again = cached_client.generate("What  is the capital of France? ")  # whitespace normalized
    assert again.output == first.output == "answer 1"
    assert counting.answered == 1
    assert again.provider == "cache"
    assert again.cost_usd == 0
    other = cached_client.generate("What is the capital of Spain?")
    assert other.output == "answer 2"
    cached_client.close()
    rows = _rows(settings)
    assert [row.cache for row in rows] == ["miss", "exact", "miss"]
    assert rows[1].cache_saved_usd == pytest.approx(first.cost_usd)
    assert rows[1].cost_usd == 0
    assert json.loads(rows[0].cache_detail)["stored"] is True


def test_parameters_and_models_are_part_of_theapi_key(
    cached_client: Client, counting: Counting
) -> None:
    cached_client.generate("hi", temperature=0.0)
    cached_client.generate("hi", temperature=0.5)
    cached_client.generate("hi", max_tokens=5)
    assert counting.answered == 3


def test_refresh_replaces_and_off_leaves_the_cache_alone(
    cached_client: Client, counting: Counting
) -> None:
    cached_client.generate("hi")
    assert cached_client.generate("hi", cache="refresh").output == "answer 2"
    assert cached_client.generate("hi").output == "answer 2"  # the refreshed answer is filed
    assert cached_client.generate("hi", cache="off").output == "answer 3"
    assert cached_client.generate("hi").output == "answer 2"  # `off` filed nothing
    with pytest.raises(ValueError, match="cache='sometimes'"):
        cached_client.generate("hi", cache="sometimes")


def test_tenants_never_share_answers(cached_client: Client, counting: Counting) -> None:
    pipeline = cached_client.runtime.pipeline

    async def ask(key: ApiKey | None) -> Context:
        return await pipeline.run(Context(Ask("chat.completions", messages=_user("hi"), key=key)))

    async def scenario() -> list[str]:
        out = []
        for key in (api_key("key_a"), api_key("key_b"), api_key("key_a"), None, None):
            ctx = await ask(key)
            out.append(ctx.results[0].raw)
        return out

    answers = asyncio.run(scenario())
    assert answers == ["answer 1", "answer 2", "answer 1", "answer 3", "answer 3"]


def _user(text: str) -> tuple[Any, ...]:
    from tether.messages import Message

    return (Message("user", text),)


def test_a_hit_is_validated_again_against_the_contract_it_is_served_under(
    settings: Settings,
) -> None:
    replies = iter(['{"ok": true}', '{"ok": false, "why": "x"}'])
    fake = FakeProvider(respond=lambda call: next(replies))
    with Client(_cached(settings), providers={"fake": fake}) as client:
        assert client.generate("hi", contract=SCHEMA).output == {"ok": True}
        assert client.generate("hi", contract=SCHEMA).provider == "cache"
        # Same contract name, a stricter schema: the cached answer no longer meets it.
        strict = {**SCHEMA, "properties": {"ok": {"type": "boolean", "const": False}}}
        fresh = client.generate("hi", contract=client.contract(strict, name="response"))
        assert fresh.provider != "cache"


def test_entries_expire(settings: Settings, counting: Counting) -> None:
    short = settings.model_copy(update={"cache": CacheSettings(mode="exact", ttl_s=0.2)})
    with Client(short, providers={"fake": counting}) as client:
        client.generate("hi")
        assert client.generate("hi").output == "answer 1"
        time.sleep(0.3)
        assert client.generate("hi").output == "answer 2"


def test_invalidation_by_prompt_tag_and_everything(
    cached_client: Client, counting: Counting
) -> None:
    cache = cached_client.runtime.cache
    cached_client.generate("one")
    cached_client.generate("two")
    dropped = cached_client.runtime.call_sync(cache.invalidate, Selector())
    assert dropped == 2
    assert cached_client.generate("one").output == "answer 3"


def test_answers_survive_a_restart_in_the_local_file(
    settings: Settings, counting: Counting
) -> None:
    with Client(_cached(settings), providers={"fake": counting}) as client:
        client.generate("hi")
    with Client(_cached(settings), providers={"fake": counting}) as client:
        assert client.generate("hi").output == "answer 1"
    assert (settings.data_dir / "response-cache.sqlite").exists()


def test_semantic_hit_for_a_paraphrase_and_a_veto_for_a_negation(
    settings: Settings, counting: Counting
) -> None:
    with Client(_cached(settings, "semantic"), providers={"fake": counting}) as client:
        client.generate("How do I reset my password?")
        para = client.generate("How can I reset my password?")
        assert para.provider == "cache"
        negated = client.generate("How do I not reset my password?")
        assert negated.provider != "cache"
        client.generate("Is the 9:15 train to Leeds on time?")
        later = client.generate("Is the 9:45 train to Leeds on time?")
    assert later.provider != "cache"
    rows = _rows(settings)
    kinds = [row.cache for row in rows]
    assert kinds == ["miss", "semantic", "miss", "miss", "miss"]
    assert json.loads(rows[2].cache_detail)["vetoed_by"] == "negation"
    assert json.loads(rows[4].cache_detail)["vetoed_by"] == "numbers"
    detail = json.loads(rows[1].cache_detail)
    assert detail["score"] >= detail["threshold"]


def test_a_cached_stream_is_replayed_piece_by_piece(settings: Settings) -> None:
    fake = FakeProvider(respond=lambda call: "one two three")
    with Client(_cached(settings), providers={"fake": fake}) as client:
        pipeline = client.runtime.pipeline

        async def stream() -> tuple[list[str], Context]:
            ctx = Context(Ask("chat.completions", messages=_user("hi"), stream=True))
            pieces = [piece async for piece in pipeline.stream(ctx)]
            return pieces, ctx

        first, _ = asyncio.run(stream())
        again, ctx = asyncio.run(stream())
    assert again == first
    assert len(first) > 1
    assert ctx.cache is not None
    assert ctx.cache.kind == "exact"


def test_misses_and_feedback_grade_the_neighbours_for_calibration(settings: Settings) -> None:
    from tether.store.cache_grades import DatabaseGradeStore
    from tether.store.feedback import add_feedback

    answers = iter(["Open Settings, then Security.", "At 9.", "It is closed on holidays."])
    fake = FakeProvider(respond=lambda call: next(answers))
    with Client(_cached(settings, "semantic"), providers={"fake": fake}) as client:
        client.generate("How do I reset my password?")
        hit = client.generate("How can I reset my password?")
        client.generate("When does the shop open?")
        client.generate("Is the shop open on holidays?")
        engine = client.runtime.engine
    rows = _rows(settings)
    assert hit.provider == "cache"
    assert [row.cache for row in rows] == ["miss", "semantic", "miss", "miss"]
    grades = DatabaseGradeStore(engine).recent(None, 10)
    # The last miss passed over the shop neighbour (close, under the threshold): its answer
    # was not the fresh one, a wrong-answer grade at that neighbour's score.
    (graded,) = [g for g in grades if g.source == "miss"]
    assert graded.right is False
    assert graded.score == pytest.approx(json.loads(rows[3].cache_detail)["score"], abs=1e-3)
    add_feedback(engine, rows[1].id, 0.0, None, "wrong answer", None)
    rated = [g for g in DatabaseGradeStore(engine).recent(None, 10) if g.source == "feedback"]
    assert [(g.request_id, g.right) for g in rated] == [(rows[1].id, False)]


def test_an_entailment_model_can_veto_a_semantic_hit(settings: Settings) -> None:
    from tether import ModelSettings, PriceSettings

    judge = FakeProvider(respond=lambda call: '{"same": false}')
    models = {
        **settings.models,
        "judge": ModelSettings(
            provider="fake", price=PriceSettings(input_per_million=1.0, output_per_million=1.0)
        ),
    }
    semantic = SemanticSettings(entailment_model="judge")
    checked = settings.model_copy(
        update={"models": models, "cache": CacheSettings(mode="semantic", semantic=semantic)}
    )  # fmt: skip
    with Client(checked, providers={"fake": Counting(), "judge": judge}) as client:
        client.generate("How do I reset my password?")
        vetoed = client.generate("How can I reset my password?")
    assert vetoed.provider != "cache"
    assert {a.model for a in vetoed.attempts} == {"judge", "fake"}  # the check is charged
    detail = json.loads(_rows(settings)[1].cache_detail)
    assert detail["vetoed_by"] == "entailment"

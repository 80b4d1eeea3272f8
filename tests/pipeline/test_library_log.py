"""Library calls write the request log like the gateway does, unless the settings say not to;
a rule that answers outright is a result like any other, checked against the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from sqlalchemy import create_engine, select

from tether import Client, FakeProvider, Settings
from tether.errors import ConfigError
from tether.routing.config import RouterSettings
from tether.settings import CallSettings
from tether.store.tables import requests

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def _rows(settings: Settings) -> list[object]:
    engine = create_engine(settings.database)
    with engine.connect() as conn:
        found = list(conn.execute(select(requests)).all())
    engine.dispose()
    return found


def test_library_calls_are_logged_and_the_setting_turns_it_off(settings: Settings) -> None:
    fake = FakeProvider(respond=lambda call: '{"ok": true}')
    with Client(settings, providers={"fake": fake}) as client:
        client.generate("hi", contract=SCHEMA)
    (row,) = _rows(settings)
    assert row.endpoint == "library.generate"  # type: ignore[attr-defined]
    assert json.loads(row.output) == {"ok": True}  # type: ignore[attr-defined]

    quiet = settings.model_copy(
        update={"calls": CallSettings(record_requests=False), "data_dir": settings.data_dir / "q"}
    )
    with Client(quiet, providers={"fake": fake}) as client:
        client.generate("hi", contract=SCHEMA)
    assert not (quiet.data_dir / "tether.db").exists()  # nothing opened, nothing written


def _ruled(settings: Settings, answer: str) -> Settings:
    router = TypeAdapter(RouterSettings).validate_python(
        {"policy": "rules", "default": "fake", "rules": [{"regex": "^hello", "answer": answer}]}
    )
    return settings.model_copy(update={"routers": {"hi": router}})


def test_a_rule_answers_without_a_model_and_is_logged(settings: Settings) -> None:
    fake = FakeProvider()
    ruled = _ruled(settings, '{"ok": true}')
    with Client(ruled, providers={"fake": fake}) as client:
        result = client.generate("hello there", contract=SCHEMA, model="router:hi")
    assert result.output == {"ok": True}
    assert result.attempts == ()
    assert result.cost_usd == 0
    assert fake.calls == []  # the cheapest call is the one not made
    (row,) = _rows(ruled)
    route = json.loads(row.route)  # type: ignore[attr-defined]
    assert route["answered_by_rule"] is True
    assert row.response == '{"ok": true}'  # type: ignore[attr-defined]


def test_a_rule_answer_that_breaks_the_contract_is_refused(settings: Settings) -> None:
    ruled = _ruled(settings, "not json")
    with (
        Client(ruled, providers={"fake": FakeProvider()}) as client,
        pytest.raises(ConfigError, match=r"routers\.hi\.rules"),
    ):
        client.generate("hello", contract=SCHEMA, model="router:hi")


def test_the_log_is_not_opened_by_a_client_that_makes_no_call(tmp_path: Path) -> None:
    with Client(Settings(data_dir=tmp_path / "data")) as client:
        client.models()
    assert not (tmp_path / "data" / "tether.db").exists()


def test_only_models_whose_preflight_accepts_the_contract_are_tried(settings: Settings) -> None:
    from tether import ModelSettings
    from tether.errors import SchemaProblem, UnsupportedSchema

    refuses = FakeProvider(problems=[SchemaProblem("pattern", "/ok", "no regex here")])
    accepts = FakeProvider(respond=lambda call: '{"ok": true}')
    models = {
        **settings.models,
        "strict": ModelSettings(provider="fake", fallbacks=["fake"]),
        "alone": ModelSettings(provider="fake"),
    }
    with Client(
        settings.model_copy(update={"models": models}),
        providers={"strict": refuses, "alone": refuses, "fake": accepts},
    ) as client:
        result = client.generate("hi", contract=SCHEMA, model="strict")
        assert [a.model for a in result.attempts] == ["fake"]
        assert refuses.calls == []  # never called: its pre-flight refused the contract
        # Without a fallback the pre-flight's refusal is the answer, naming the keyword.
        with pytest.raises(UnsupportedSchema, match="pattern"):
            client.generate("hi", contract=SCHEMA, model="alone")

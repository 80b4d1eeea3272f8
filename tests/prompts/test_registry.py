"""The registry suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import update

from tether.errors import (
    IncompatibleChange,
    NothingToRollBack,
    PromptNotFound,
    VersionConflict,
)
from tether.evals.assertions import Judge
from tether.prompts.registry import Registry
from tether.prompts.spec import PromptSpec
from tether.store.tables import prompt_versions

from .specs import output_schema, spec, spec_data


def _push(registry: Registry, s: PromptSpec, message: str = "") -> Any:
    return registry.push(s, source=f"# {s.name} {s.version}\n", author="ada", message=message)


def _changed(version: str, change: Any) -> PromptSpec:
    data = spec_data(version)
    change(output_schema(data))
    return PromptSpec.model_validate(data)


def test_push_and_get(registry: Registry) -> None:
    outcome = _push(registry, spec(), "first")
    assert outcome.created
    found = registry.get("ticket", version="1.0.0")
    assert found.spec == spec()
    assert found.author == "ada"
    assert found.message == "first"
    assert found.content_hash == spec().content_hash()
    assert found.created_at.tzinfo is not None
    assert registry.get("ticket").version == "1.0.0"


def test_versions_are_immutable(registry: Registry) -> None:
    _push(registry, spec())
    again = _push(registry, spec())
    assert not again.created
    with pytest.raises(VersionConflict) as err:
        _push(registry, spec(description="something else"))
    assert "bump the version" in err.value.fix
    assert registry.get("ticket", version="1.0.0").spec.description == "Route a support ticket."


def test_unknown_prompt_version_and_label(registry: Registry) -> None:
    with pytest.raises(PromptNotFound):
        registry.get("nope")
    _push(registry, spec())
    with pytest.raises(PromptNotFound):
        registry.get("ticket", version="9.9.9")
    with pytest.raises(PromptNotFound):
        registry.get("ticket", label="production")


# The output contract is what consumers rely on: a change that lets the new version produce an
# output the old contract refused is breaking; narrowing it is compatible.
BREAKING = {
    "field removed": lambda s: s["properties"].pop("summary"),
    "field renamed": lambda s: (
        s["properties"].update({"queue_name": s["properties"].pop("queue")})
        or s.update(required=["queue_name", "urgent"])
    ),
    "type changed": lambda s: s["properties"].update(urgent={"type": "string"}),
    "enum widened": lambda s: s["properties"]["queue"].update(
        enum=["billing", "tech", "sales", "legal"]
    ),
    "no longer required": lambda s: s.update(required=["queue"]),
    "constraint relaxed": lambda s: s["properties"]["urgent"].update(type=["boolean", "null"]),
}


@pytest.mark.parametrize("change", list(BREAKING), ids=list(BREAKING))
def test_breaking_contract_changes_need_a_major_bump(registry: Registry, change: str) -> None:
    _push(registry, spec())
    with pytest.raises(IncompatibleChange) as err:
        _push(registry, _changed("1.1.0", BREAKING[change]))
    assert err.value.needed == "major"
    assert err.value.reasons
    assert _push(registry, _changed("2.0.0", BREAKING[change])).created


COMPATIBLE = {
    "optional field added": lambda s: s["properties"].update(lang={"type": "string"}),
    "enum narrowed": lambda s: s["properties"]["queue"].update(enum=["billing", "tech"]),
    "made required": lambda s: s.update(required=["queue", "urgent", "summary"]),
    "constraint tightened": lambda s: s["properties"]["summary"].update(maxLength=10),
}


@pytest.mark.parametrize("change", list(COMPATIBLE), ids=list(COMPATIBLE))
def test_compatible_contract_changes_need_a_minor_bump(registry: Registry, change: str) -> None:
    _push(registry, spec())
    with pytest.raises(IncompatibleChange) as err:
        _push(registry, _changed("1.0.1", COMPATIBLE[change]))
    assert err.value.needed == "minor"
    outcome = _push(registry, _changed("1.1.0", COMPATIBLE[change]))
    assert outcome.created
    assert outcome.previous == "1.0.0"


def test_template_only_changes_take_a_patch(registry: Registry) -> None:
    _push(registry, spec())
    messages = [
        {"role": "system", "content": "Route the ticket to the right queue."},
        {"role": "user", "content": "Ticket: {{ text }}"},
    ]
    outcome = _push(registry, spec("1.0.1", messages=messages))
    assert outcome.created
    assert outcome.report is not None
    assert [c.what for c in outcome.report.changes] == ["templates changed"]


def test_new_required_input_needs_a_major_bump(registry: Registry) -> None:
    _push(registry, spec())
    inputs = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "lang": {"type": "string"}},
        "required": ["text", "lang"],
    }
    with pytest.raises(IncompatibleChange, match="does not require 'lang'") as err:
        _push(registry, spec("1.1.0", inputs=inputs, examples=[]))
    assert "inputs that the old version accepted are refused" in str(err.value)


def test_labels_move_and_roll_back_with_a_record(registry: Registry) -> None:
    _push(registry, spec())
    _push(registry, spec("1.0.1", description="better"))
    _push(registry, spec("1.0.2", description="best"))
    registry.set_label("ticket", "production", "1.0.0", actor="ada", reason="launch")
    registry.set_label("ticket", "production", "1.0.1", actor="bob", reason="improve")
    registry.set_label("ticket", "production", "1.0.2", actor="bob", reason="improve more")
    assert registry.get("ticket", label="production").version == "1.0.2"
    back = registry.rollback("ticket", "production", actor="cy", reason="regression")
    assert (back.from_version, back.to_version, back.kind) == ("1.0.2", "1.0.1", "rollback")
    registry.rollback("ticket", "production", actor="cy", reason="still bad")
    assert registry.labels("ticket") == {"production": "1.0.0"}
    with pytest.raises(NothingToRollBack, match="no earlier version") as err:
        registry.rollback("ticket", "production", actor="cy", reason="too far")
    assert err.value.current == "1.0.0"
    assert "tether prompts label" in err.value.fix
    history = registry.label_history("ticket")
    assert [(e.to_version, e.actor, e.reason) for e in history] == [
        ("1.0.0", "ada", "launch"),
        ("1.0.1", "bob", "improve"),
        ("1.0.2", "bob", "improve more"),
        ("1.0.1", "cy", "regression"),
        ("1.0.0", "cy", "still bad"),
    ]


def test_label_must_point_at_an_existing_version(registry: Registry) -> None:
    _push(registry, spec())
    with pytest.raises(PromptNotFound):
        registry.set_label("ticket", "staging", "3.0.0", actor="a", reason="")
    assert registry.labels("ticket") == {}


def test_summaries(registry: Registry) -> None:
    _push(registry, spec())
    _push(registry, spec("1.0.1", description="x"))
    _push(registry, spec(name="other"))
    registry.set_label("ticket", "staging", "1.0.1", actor="a", reason="")
    summaries = {s.name: s for s in registry.summaries()}
    assert summaries["ticket"].latest == "1.0.1"
    assert summaries["ticket"].versions == 2
    assert summaries["ticket"].labels == {"staging": "1.0.1"}
    assert summaries["other"].latest == "1.0.0"


def test_concurrent_pushes_of_one_version_one_wins(registry: Registry) -> None:
    contenders = [spec(description=f"writer {n}") for n in range(4)]
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []
    lock = threading.Lock()

    def push(s: PromptSpec) -> None:
        barrier.wait()
        try:
            _push(registry, s)
            result = "won"
        except VersionConflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=push, args=(s,)) for s in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]
    stored = registry.versions("ticket")
    assert len(stored) == 1
    assert stored[0].spec.description in {s.description for s in contenders}
    assert stored[0].content_hash == stored[0].spec.content_hash()


def test_migrations_are_recorded_once(database_url: str) -> None:
    import sqlalchemy as sa

    from tether.store import open_database
    from tether.store.migrations import MIGRATIONS, migrate

    engine = open_database(database_url)
    try:
        assert migrate(engine) == []  # already applied by open_database
        with engine.connect() as conn:
            numbers = conn.execute(sa.text("SELECT number FROM schema_migrations")).scalars()
            assert sorted(numbers) == [m[0] for m in MIGRATIONS]
    finally:
        engine.dispose()


def test_a_version_stored_under_older_spec_rules_still_loads(registry: Registry) -> None:
    judge = {"type": "judge", "criteria": "is polite", "model": "fake"}
    tests = [{"name": "polite", "inputs": {"text": "hi"}, "assert": [judge]}]
    _push(registry, spec(tests=tests))
    # Pushed before the judge needed a model: the stored spec has none.
    stored = spec().canonical()
    stored["tests"] = [{**tests[0], "assert": [{**judge, "model": None}]}]
    with registry.engine.begin() as conn:
        conn.execute(update(prompt_versions).values(spec=json.dumps(stored)))
    found = registry.get("ticket", version="1.0.0")
    loaded = found.spec.tests[0].asserts[0]
    assert isinstance(loaded, Judge)
    assert loaded.model is None

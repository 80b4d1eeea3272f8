"""Every string field round-trips byte-exact through a spec file and the registry, for each
string of the Big List of Naughty Strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tether.errors import SpecError
from tether.prompts.loader import parse_spec
from tether.prompts.registry import Registry
from tether.prompts.spec import PromptSpec


def _naughty(data_dir: Path) -> list[str]:
    strings: list[str] = json.loads((data_dir / "json" / "blns" / "blns.json").read_text("utf-8"))
    return [s for s in strings if s]  # an empty name is refused on purpose


def _spec(index: int, text: str) -> PromptSpec:
    data = {
        "name": text,
        "version": f"1.0.{index}",
        "description": text,
        "messages": [{"role": "system", "content": text}, {"role": "user", "content": "{{ q }}"}],
        "inputs": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    dumped = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    loaded = parse_spec(dumped, source_name="naughty.yaml")
    return loaded.spec


def test_every_string_field_round_trips(registry: Registry, data_dir: Path) -> None:
    strings = _naughty(data_dir)
    assert len(strings) > 500
    refused: list[tuple[str, str]] = []
    for index, text in enumerate(strings):
        try:
            spec = _spec(index, text)
        except SpecError as exc:
            refused.append((text, exc.field))
            continue
        assert (spec.name, spec.description, spec.messages[0].content) == (text, text, text)
        registry.push(spec, source=text, author=text, message=text)
        registry.set_label(text, text, spec.version, actor=text, reason=text)
        stored = registry.get(text, label=text)
        assert stored.spec == spec
        assert (stored.name, stored.source, stored.author, stored.message) == (
            text,
            text,
            text,
            text,
        )
        event = registry.label_history(text, text)[-1]
        assert (event.label, event.actor, event.reason) == (text, text, text)
    # Only a template that Jinja cannot parse may be refused (with a SpecError naming it).
    assert {field for _, field in refused} <= {"messages.0.content"}, refused
    assert len(refused) < 20


def test_empty_name_is_refused_clearly() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(
            "name: ''\nversion: 1.0.0\nmessages: [{role: user, content: x}]\n", source_name="e.yaml"
        )
    assert err.value.field == "name"

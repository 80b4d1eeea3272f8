"""Turn what a server returned for a rewritten schema back into the contract's shape.

A value sent wrapped comes back as {"value": ...} and is unwrapped. Where optional properties
were sent required and nullable, the model writes null for "absent": a null that the contract
does not allow at that property is dropped (the property is left out) before validation, so
the contract's own schema judges the answer. A null the contract allows is kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tether.providers.schema_profiles.profile import WirePlan
from tether.providers.schema_profiles.refs import accepts_null, deref
from tether.providers.schema_profiles.strict import WRAPPED_KEY

_BRANCHES = ("anyOf", "oneOf", "allOf")


def restore(text: str, plan: WirePlan, schema: Mapping[str, Any]) -> str:
    """`text` in the contract's shape; unchanged when it is not the JSON expected (the
    validator then reports it)."""
    if not (plan.wrapped or plan.nullable):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if plan.wrapped:
        if not (isinstance(value, dict) and list(value) == [WRAPPED_KEY]):
            return text
        value = value[WRAPPED_KEY]
    if plan.nullable:
        drop_absent_nulls(value, schema)
    return json.dumps(value, ensure_ascii=False)


def _candidates(schemas: list[Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The schemas themselves and every branch they combine, references followed."""
    found: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    todo = list(schemas)
    while todo:
        schema = deref(todo.pop(), root)
        if not isinstance(schema, Mapping) or id(schema) in seen:
            continue
        seen.add(id(schema))
        found.append(schema)
        for key in _BRANCHES:
            if isinstance(schema.get(key), list):
                todo.extend(schema[key])
    return found


def drop_absent_nulls(value: Any, root: Mapping[str, Any]) -> None:
    """Remove, in place, object members whose value is null where no schema that can apply
    to them accepts null (iterative: the value's depth is the model's choice)."""
    stack: list[tuple[Any, list[Any]]] = [(value, [root])]
    while stack:
        item, schemas = stack.pop()
        candidates = _candidates(schemas, root)
        if isinstance(item, dict):
            for key in list(item):
                subs = [
                    c["properties"][key]
                    for c in candidates
                    if isinstance(c.get("properties"), Mapping) and key in c["properties"]
                ]
                if not subs:
                    continue
                if item[key] is None and not any(accepts_null(s, root) for s in subs):
                    del item[key]
                else:
                    stack.append((item[key], subs))
        elif isinstance(item, list):
            subs = [c["items"] for c in candidates if isinstance(c.get("items"), Mapping)]
            if subs:
                stack.extend((element, subs) for element in item)

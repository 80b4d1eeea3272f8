"""Per-request signals: numbers (and labels) that say how one finished request went, stored as
series per prompt version for drift and alerts.

`signal_input` takes what the signals need from the request context (on the event loop: cheap,
nothing computed); `compute_signals` is pure and runs in the signal worker's thread. The
evasive score and lexical diversity (detectors.py) are added there too: they need a model or
the answers before this one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.costs.accounting import charged
from tether.observe.recorder import jsonable, output_valid
from tether.pipeline.context import Context
from tether.providers.schema_profiles.refs import deref
from tether.store.signals import Signal

# A schema field holding the model's own confidence: `"x-tether-confidence": true` (in Pydantic,
# `Field(json_schema_extra={"x-tether-confidence": True})`); else a top-level `confidence`.
CONFIDENCE_MARK = "x-tether-confidence"
CONFIDENCE_FIELD = "confidence"
ENUM_PREFIX = "enum:"
ROOT_PATH = "$"  # the enum signal of an output that is itself an enum or a boolean
_MAX_DEPTH = 8  # nested objects followed; deeper fields (and recursive schemas) are left out
_MISSING = object()

Path = tuple[str, ...]


@dataclass(frozen=True)
class SignalInput:
    """What the signals of one finished request are computed from."""

    request_id: str
    at: datetime
    prompt: str | None
    version: str | None
    model: str | None  # the model that answered (or was last tried)
    key_id: str | None
    latency_s: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    status: int
    valid: bool | None  # None: no contract
    repairs: int
    output: Any = None  # the validated output as JSON data; None when there is none
    text: str | None = None  # the raw answer
    schema: Mapping[str, Any] | None = field(default=None, repr=False)  # the contract's

    @property
    def answered(self) -> bool:
        return self.status < 400

    @property
    def free_text(self) -> str | None:
        """The answer when it is free text (no contract, or a string schema), else None."""
        if self.answered and isinstance(self.output, str):
            return self.output
        return None


def signal_input(ctx: Context) -> SignalInput:
    attempts = tuple(ctx.attempts)
    usage, cost = charged(attempts)
    answered = ctx.error is None and bool(ctx.results)
    output = jsonable(ctx.results[0].output) if answered else None
    if answered and ctx.contract is None and ctx.ask.tools is not None:
        output = None  # tool calls: not an answer to score
    return SignalInput(
        request_id=ctx.request_id,
        at=datetime.now(UTC),
        prompt=ctx.prompt_name,
        version=ctx.found.version if ctx.found is not None else None,
        model=ctx.answered_by or ctx.model or ctx.ask.model,
        key_id=ctx.ask.key.id if ctx.ask.key is not None else None,
        latency_s=time.perf_counter() - ctx.started,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
        status=ctx.status,
        valid=output_valid(ctx),
        repairs=max(len(attempts) - 1, 0),
        output=output,
        text=_text(ctx),
        schema=ctx.contract.schema if ctx.contract is not None else None,
    )


def _text(ctx: Context) -> str | None:
    if ctx.answer is not None:
        return ctx.answer
    if ctx.streamed:
        return "".join(ctx.streamed)
    if ctx.results:
        return ctx.results[0].raw
    return (ctx.attempts[-1].raw or None) if ctx.attempts else None


def compute_signals(inp: SignalInput) -> list[Signal]:
    """The signals one request carries by itself (no model, no history)."""
    out = [
        Signal("latency_ms", round(inp.latency_s * 1000, 3)),
        Signal("input_tokens", float(inp.input_tokens)),
        Signal("output_tokens", float(inp.output_tokens)),
        Signal("cost_usd", inp.cost_usd),
        Signal("error", 0.0 if inp.answered else 1.0),
        Signal("repairs", float(inp.repairs)),
    ]
    if inp.valid is not None:
        out.append(Signal("valid", 1.0 if inp.valid else 0.0))
    if inp.text is not None:
        out.append(Signal("length_chars", float(len(inp.text))))
        out.append(Signal("length_words", float(len(inp.text.split()))))
    if inp.schema is not None and inp.answered and inp.output is not None:
        out.extend(schema_signals(inp.schema, inp.output))
    return out


def schema_signals(schema: Mapping[str, Any], output: Any) -> list[Signal]:
    """The confidence and enum-field signals of an output, found through its schema."""
    fields = SchemaFields.of(schema)
    out: list[Signal] = []
    if fields.confidence is not None:
        value = value_at(output, fields.confidence)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(Signal("confidence", float(value)))
    for path in fields.enums:
        value = value_at(output, path)
        if value is not _MISSING:
            out.append(Signal(enum_signal_name(path), label=_label(value)))
    return out


def enum_signal_name(path: Path) -> str:
    return ENUM_PREFIX + (".".join(path) if path else ROOT_PATH)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def value_at(output: Any, path: Path) -> Any:
    """The output's value at a path of object keys, or a private missing marker."""
    node = output
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


@dataclass(frozen=True)
class SchemaFields:
    """Where a schema keeps the confidence and its enum-valued (or boolean) fields. Objects are
    followed through `$ref`, anyOf/oneOf/allOf and nested properties; arrays are not."""

    confidence: Path | None
    enums: tuple[Path, ...]

    @classmethod
    def of(cls, schema: Mapping[str, Any]) -> SchemaFields:
        marked: list[Path] = []
        enums: list[Path] = []
        numeric_top: list[Path] = []
        for path, nodes in _fields(schema, schema, (), 0, frozenset()):
            kinds = {kind for node in nodes for kind in _types(node)}
            numeric = bool(kinds & {"number", "integer"})
            if numeric and any(node.get(CONFIDENCE_MARK) is True for node in nodes):
                marked.append(path)
            if numeric and path == (CONFIDENCE_FIELD,):
                numeric_top.append(path)
            if "boolean" in kinds or any(_is_enum(node) for node in nodes):
                enums.append(path)
        found = marked or numeric_top
        confidence = found[0] if found else None
        return cls(confidence=confidence, enums=tuple(enums))


def _fields(
    node: Any, root: Mapping[str, Any], path: Path, depth: int, refs: frozenset[str]
) -> Iterator[tuple[Path, list[Mapping[str, Any]]]]:
    """Each field (the root first) with the subschemas that describe it."""
    nodes, followed = _alternatives(node, root, refs)
    if not nodes:
        return
    yield path, nodes
    if depth >= _MAX_DEPTH:
        return
    seen: set[str] = set()
    for sub in nodes:
        properties = sub.get("properties")
        if not isinstance(properties, Mapping):
            continue
        for key, child in properties.items():
            if isinstance(key, str) and key not in seen:
                seen.add(key)
                yield from _fields(child, root, (*path, key), depth + 1, followed)


def _alternatives(
    node: Any, root: Mapping[str, Any], refs: frozenset[str]
) -> tuple[list[Mapping[str, Any]], frozenset[str]]:
    """The node and every subschema it may take through references and combinators, with the
    references followed so far (a recursive schema is not walked again)."""
    out: list[Mapping[str, Any]] = []
    pending = [node]
    followed = set(refs)
    while pending and len(out) < 64:
        item = pending.pop(0)
        if not isinstance(item, Mapping):
            continue
        out.append(item)
        ref = item.get("$ref")
        if isinstance(ref, str) and ref not in followed:
            followed.add(ref)
            pending.append(deref(item, root))
        for key in ("anyOf", "oneOf", "allOf"):
            branches = item.get(key)
            if isinstance(branches, list):
                pending.extend(branches)
    return out, frozenset(followed)


def _types(node: Mapping[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def _is_enum(node: Mapping[str, Any]) -> bool:
    values = node.get("enum")
    return isinstance(values, list) and len(values) > 1

"""The instruction that tells a model which JSON to produce, for providers that need telling."""

from __future__ import annotations

import json

from tether.messages import Message, OutputSpec


def schema_instruction(spec: OutputSpec) -> Message:
    return Message(
        "system",
        "Reply with a single JSON value, no other text, that meets this JSON Schema:\n"
        + json.dumps(spec.schema, ensure_ascii=False, separators=(",", ":")),
    )

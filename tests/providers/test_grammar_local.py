"""The number cap on the real local model (Qwen2.5-Coder-0.5B-Instruct): asked for a number
with hundreds of digits, it writes one of at most MAX_NUMBER_DIGITS digits and ends, rather
than writing digits until max_tokens."""

from __future__ import annotations

import json
import re

import pytest

from tether import Client
from tether.messages import GenerationParams, Message, OutputSpec, ProviderCall
from tether.providers.grammar import MAX_NUMBER_DIGITS
from tether.providers.llamacpp import LlamaCppProvider

pytestmark = pytest.mark.local_model

VALUE = {
    "type": "object",
    "properties": {"value": {"type": "number"}},
    "required": ["value"],
    "additionalProperties": False,
}


def test_a_long_number_ends_before_max_tokens(local_client: Client) -> None:
    provider = local_client.provider("local")
    assert isinstance(provider, LlamaCppProvider)
    out = provider.complete(
        ProviderCall(
            (Message("user", "Write pi to 200 decimal places."),),
            GenerationParams(max_tokens=120),
            output=OutputSpec("pi", VALUE, strict=True),
        )
    )
    assert out.finish_reason == "stop"
    assert out.usage.output_tokens < 120
    value = json.loads(out.text)
    assert isinstance(value["value"], float)
    assert str(value["value"]).startswith("3.14")
    (number,) = re.findall(r"[-\d.eE+]+", out.text.split(":", 1)[1])
    assert len(re.sub(r"\D", "", number)) <= MAX_NUMBER_DIGITS

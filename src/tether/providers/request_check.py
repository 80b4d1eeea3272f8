"""The one place that checks a request against what its provider can honour: a field the
provider would ignore is a 400 naming that field, never a silent drop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.errors import InvalidRequest
from tether.messages import ToolSpec
from tether.providers.base import SAMPLING_PARAMS, Capabilities


def check_honoured(
    capabilities: Capabilities,
    params: Mapping[str, Any],
    tools: ToolSpec | None,
    *,
    provider: str,
    model: str,
) -> None:
    """Raise InvalidRequest for the first set field `provider` cannot honour."""
    for field in sorted(SAMPLING_PARAMS & params.keys()):
        value = params[field]
        if value is None or value is False or value == ():
            continue  # not set: the provider's default applies
        if field not in capabilities.sampling_params:
            raise InvalidRequest(
                f"`{field}` is not supported by model {model!r} ({provider})",
                param=field,
                fix=f"remove `{field}`, or use a model whose provider supports it",
            )
    if tools is not None and tools.tools and not capabilities.supports_tools:
        raise InvalidRequest(
            f"model {model!r} ({provider}) cannot call tools",
            param="tools",
            fix="remove `tools`, or use a model whose provider supports tool calling",
        )

"""What /docs shows for each route's request body.

The handlers read raw bodies (no per-request model validation on the hot path), so FastAPI
cannot infer these: they are declared here, as Pydantic models used only for the OpenAPI
document, and attached to each route with `body_doc`. The UI's assets ship with the package
(fastapi-offline), so /docs works without any network.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Doc):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = Field(
        description="text, or text content parts [{type: text, text}]"
    )
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, description="an assistant turn's calls: [{id, type: function, function}]"
    )
    tool_call_id: str | None = Field(default=None, description="a tool turn: the call answered")


class ResponseFormat(_Doc):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = Field(
        default=None, description="{name, schema, strict}: the output contract"
    )


class ChatCompletionBody(_Doc):
    """An OpenAI chat completion request; a field the chosen model cannot honour is refused by
    name (400), never dropped."""

    model: str | None = Field(default=None, description="a configured model; default: settings")
    messages: list[ChatMessage] = Field(min_length=1)
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = Field(default=None, examples=[{"include_usage": True}])
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = Field(default=None, description="token id -> bias")
    n: int | None = Field(default=None, ge=1, description="independent choices")
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="[{type: function, function: {name, description, parameters}}]"
    )
    tool_choice: str | dict[str, Any] | None = Field(
        default=None, description="none, auto, required, or {type: function, function: {name}}"
    )
    parallel_tool_calls: bool | None = None


class EmbeddingsBody(_Doc):
    model: str
    input: str | list[str]


class PromptRunBody(_Doc):
    inputs: dict[str, Any] = Field(default_factory=dict, description="the prompt's variables")
    label: str | None = Field(default=None, description="default: production")
    version: str | None = Field(default=None, description="an exact version instead of a label")
    model: str | None = Field(default=None, description="override the prompt's model")


class FeedbackBody(_Doc):
    request_id: str = Field(description="the x-tether-request-id of a call made with this key")
    score: float | None = None
    label: str | None = None
    comment: str | None = None


class PushPromptBody(_Doc):
    source: str = Field(description="the spec file's YAML text")
    author: str | None = None
    message: str | None = None


class LabelBody(_Doc):
    label: str
    version: str
    actor: str | None = None
    reason: str | None = None


class RollbackBody(_Doc):
    label: str = "production"
    actor: str | None = None
    reason: str | None = None


class CreateKeyBody(_Doc):
    name: str = Field(min_length=1, max_length=200)
    models: list[str] | None = Field(default=None, description="allowed models; none: all")
    prompts: list[str] | None = Field(default=None, description="allowed prompts; none: all")
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: Literal["day", "month", "total"] = Field(
        default="total", description="when budget_usd starts afresh (calendar, UTC)"
    )
    expires_at: str | None = Field(default=None, description="ISO 8601 with a timezone")


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body `model` describes."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(model)}},
        }
    }


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    # Nested models live in components.schemas (see `with_components`).
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def with_components(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the nested models the bodies refer to."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (
        ChatCompletionBody, EmbeddingsBody, PromptRunBody, FeedbackBody, PushPromptBody,
        LabelBody, RollbackBody, CreateKeyBody,
    ):  # fmt: skip
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.get("$defs", {}))
    return document

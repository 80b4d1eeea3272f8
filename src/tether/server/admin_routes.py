"""The admin API: prompts, labels and keys. Admins only (see tether.server.auth)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from tether.errors import InvalidRequest
from tether.prompts.loader import parse_spec
from tether.prompts.registry import PromptVersion, PushOutcome
from tether.server.api_docs import CreateKeyBody, LabelBody, PushPromptBody, RollbackBody, body_doc
from tether.server.auth import AdminAuth
from tether.server.bodies import read_json
from tether.server.gateway import Gateway
from tether.server.keys import parse_expiry
from tether.server.openai_routes import JSON
from tether.store.offload import in_thread

router = APIRouter(prefix="/admin")
# Every database call below runs in a worker thread with a deadline (tether.store.offload).
REG, KEYS = "prompt registry", "key store"


def _admin(request: Request) -> Gateway:
    """The gateway, once the request has passed the admin checks (see `AdminAuth.require`)."""
    auth: AdminAuth = request.app.state.auth
    auth.require(request)
    gateway: Gateway = request.app.state.gateway
    return gateway


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def _str(body: dict[str, Any], field: str, default: str | None = None) -> str:
    value = body.get(field, default)
    if not isinstance(value, str):
        raise InvalidRequest(f"`{field}` must be a string", param=field)
    return value


@router.get("/prompts")
async def list_prompts(request: Request) -> Response:
    registry = _admin(request).client.registry
    return _json(await in_thread(lambda: [s.__dict__ for s in registry.summaries()], what=REG))


@router.post("/prompts", openapi_extra=body_doc(PushPromptBody))
async def push_prompt(request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    source = _str(body, "source")
    author = _str(body, "author", gateway.settings.actor)
    message = _str(body, "message", "")

    def push() -> PushOutcome:
        loaded = parse_spec(
            source,
            source_name="request body",
            model_modules=gateway.settings.prompt_model_modules,
        )
        return gateway.client.registry.push(
            loaded.spec, source=loaded.source, author=author, message=message
        )

    outcome = await in_thread(push, what=REG)
    return _json(
        {
            "name": outcome.version.name,
            "version": outcome.version.version,
            "created": outcome.created,
            "previous": outcome.previous,
            "changes": [c.what for c in outcome.report.changes] if outcome.report else [],
        },
        201 if outcome.created else 200,
    )


@router.get("/prompts/{name}")
async def prompt_detail(name: str, request: Request) -> Response:
    registry = _admin(request).client.registry

    def read() -> tuple[list[PromptVersion], dict[str, str]]:
        versions = registry.versions(name)
        if not versions:
            registry.get(name)  # raises PromptNotFound
        return versions, registry.labels(name)

    versions, labels = await in_thread(read, what=REG)
    return _json(
        {
            "name": name,
            "labels": labels,
            "versions": [
                {
                    "version": v.version,
                    "hash": v.content_hash,
                    "author": v.author,
                    "message": v.message,
                    "created_at": v.created_at.isoformat(),
                }
                for v in versions
            ],
        }
    )


@router.post("/prompts/{name}/labels", openapi_extra=body_doc(LabelBody))
async def set_label(name: str, request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    label, version = _str(body, "label"), _str(body, "version")
    actor, reason = _str(body, "actor", gateway.settings.actor), _str(body, "reason", "")
    event = await in_thread(
        lambda: gateway.client.registry.set_label(name, label, version, actor=actor, reason=reason),
        what=REG,
    )
    return _json({"label": event.label, "from": event.from_version, "to": event.to_version})


@router.post("/prompts/{name}/rollback", openapi_extra=body_doc(RollbackBody))
async def rollback(name: str, request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    label = _str(body, "label", "production")
    actor, reason = _str(body, "actor", gateway.settings.actor), _str(body, "reason", "")
    event = await in_thread(
        lambda: gateway.client.registry.rollback(name, label, actor=actor, reason=reason),
        what=REG,
    )
    return _json({"label": event.label, "from": event.from_version, "to": event.to_version})


@router.get("/keys")
async def list_keys(request: Request) -> Response:
    keys = _admin(request).keys
    return _json(await in_thread(lambda: [k.public() for k in keys.list()], what=KEYS))


def _names(body: dict[str, Any], field: str) -> list[str] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"`{field}` must be an array of strings", param=field)
    return value


def _number(body: dict[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidRequest(f"`{field}` must be a number", param=field)
    return value


def _whole(body: dict[str, Any], field: str) -> int | None:
    value = _number(body, field)
    if value is not None and not (isinstance(value, int) or float(value).is_integer()):
        raise InvalidRequest(f"`{field}` must be a whole number", param=field)
    # float('inf') is not integer, so int() below never sees it
    return int(value) if value is not None else None


@router.post("/keys", openapi_extra=body_doc(CreateKeyBody))
async def create_key(request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    name, models, prompts = _str(body, "name"), _names(body, "models"), _names(body, "prompts")
    rpm, tpm, budget = _whole(body, "rpm"), _whole(body, "tpm"), _number(body, "budget_usd")
    expires_at = _expiry(body)
    budget_period = body.get("budget_period", "total")
    if not isinstance(budget_period, str):  # None too: leave the field out for "total"
        raise InvalidRequest("`budget_period` must be a string", param="budget_period")
    key, secret = await in_thread(
        lambda: gateway.keys.create(
            name,
            models=models,
            prompts=prompts,
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget,
            expires_at=expires_at,
            budget_period=budget_period,
        ),
        what=KEYS,
    )
    return _json({**key.public(), "secret": secret}, 201)


def _expiry(body: dict[str, Any]) -> datetime | None:
    value = body.get("expires_at")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("`expires_at` must be an ISO 8601 string", param="expires_at")
    try:
        return parse_expiry(value)
    except ValueError as exc:
        raise InvalidRequest(f"`expires_at`: {exc}", param="expires_at") from None


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> Response:
    keys = _admin(request).keys
    return _json(await in_thread(lambda: keys.revoke(key_id).public(), what=KEYS))

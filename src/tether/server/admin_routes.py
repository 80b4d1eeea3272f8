"""The admin API: prompts, labels and keys. Admins only (see tether.server.auth)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from tether.errors import InvalidRequest
from tether.prompts.loader import parse_spec
from tether.server.auth import AdminAuth
from tether.server.bodies import read_json
from tether.server.gateway import Gateway
from tether.server.keys import parse_expiry
from tether.server.openai_routes import JSON

router = APIRouter(prefix="/admin")


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
    gateway = _admin(request)
    return _json([s.__dict__ for s in gateway.client.registry.summaries()])


@router.post("/prompts")
async def push_prompt(request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    loaded = parse_spec(_str(body, "source"), source_name="request body")
    outcome = gateway.client.registry.push(
        loaded.spec,
        source=loaded.source,
        author=_str(body, "author", gateway.settings.actor),
        message=_str(body, "message", ""),
    )
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
    versions = registry.versions(name)
    if not versions:
        registry.get(name)  # raises PromptNotFound
    return _json(
        {
            "name": name,
            "labels": registry.labels(name),
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


@router.post("/prompts/{name}/labels")
async def set_label(name: str, request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    event = gateway.client.registry.set_label(
        name,
        _str(body, "label"),
        _str(body, "version"),
        actor=_str(body, "actor", gateway.settings.actor),
        reason=_str(body, "reason", ""),
    )
    return _json({"label": event.label, "from": event.from_version, "to": event.to_version})


@router.post("/prompts/{name}/rollback")
async def rollback(name: str, request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    event = gateway.client.registry.rollback(
        name,
        _str(body, "label", "production"),
        actor=_str(body, "actor", gateway.settings.actor),
        reason=_str(body, "reason", ""),
    )
    return _json({"label": event.label, "from": event.from_version, "to": event.to_version})


@router.get("/keys")
async def list_keys(request: Request) -> Response:
    return _json([k.public() for k in _admin(request).keys.list()])


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


@router.post("/keys")
async def create_key(request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    key, secret = gateway.keys.create(
        _str(body, "name"),
        models=_names(body, "models"),
        prompts=_names(body, "prompts"),
        rpm=_whole(body, "rpm"),
        tpm=_whole(body, "tpm"),
        budget_usd=_number(body, "budget_usd"),
        expires_at=_expiry(body),
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
    return _json(_admin(request).keys.revoke(key_id).public())

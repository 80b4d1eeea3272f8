"""Replaying recorded HTTP exchanges through httpx2.MockTransport, and shared test data.

A recording (tests/fixtures/http/*.json) is a list of exchanges in the order the SDK makes them:

    {"description": "...",
     "exchanges": [{"request": {"method": "POST", "path": "/v1/chat/completions",
                                "json": {...the body fields that matter...}},
                    "response": {"status": 200, "headers": {...}, "body": {...}}}]}

`request.json` is matched as a subset of the body actually sent: every key given must be there
with an equal value (recursively; lists must have the same length). A response body may contain
the placeholder `$API_KEY`, replaced by the key the request carried, like an upstream that echoes
the key back in its error message.

Mismatches are recorded, not raised, inside the transport: the SDKs turn any exception raised
there into a connection error, which would hide the real reason. Call `verify()` after the call.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2
from pydantic import BaseModel

# The support ticket both recorded-HTTP suites ask for.
SYSTEM = "You triage support tickets."
PROMPT = "The export button crashes the app every time. Customers are blocked."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


class Ticket(BaseModel):
    title: str
    priority: Literal["low", "medium", "high"]
    tags: list[str]


EXPECTED_TICKET = Ticket(
    title="Export button crashes the app", priority="high", tags=["export", "crash"]
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "http"
API_KEY = "sk-test-123"
API_KEY_PLACEHOLDER = "$API_KEY"

# the `generate` fixture: `await generate(client, prompt, **kwargs)`, sync or async
Generate = Callable[..., Awaitable[Any]]


def load_recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where `actual` differs from `expected`, treating dicts in `expected` as subsets."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '/'}: expected an object, got {actual!r}"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{where}/{key}: missing")
            else:
                found.extend(mismatches(value, actual[key], f"{where}/{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where or '/'}: expected {expected!r}, got {actual!r}"]
        return [
            problem
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for problem in mismatches(e, a, f"{where}/{i}")
        ]
    if expected != actual or type(expected) is not type(actual):
        return [f"{where or '/'}: expected {expected!r}, got {actual!r}"]
    return []


def sent_key(request: httpx2.Request) -> str:
    """The API key a request carries (anthropic 2.x sends it as a bearer token, like OpenAI)."""
    if "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    return request.headers.get("authorization", "").removeprefix("Bearer ")


class Replay:
    """Answers requests from a recording, in order, and keeps what was sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.exchanges: list[dict[str, Any]] = load_recording(name)["exchanges"]
        self.requests: list[httpx2.Request] = []
        self.bodies: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._clients: list[httpx2.Client] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        index = len(self.requests)
        self.requests.append(request)
        body = json.loads(request.content) if request.content else {}
        self.bodies.append(body)
        if index >= len(self.exchanges):
            self.problems.append(f"request {index}: not in the recording ({len(self.exchanges)})")
            return httpx2.Response(599, json={"error": {"message": "not in the recording"}})
        recorded = self.exchanges[index]
        expected = recorded["request"]
        if request.method != expected["method"]:
            self.problems.append(f"request {index}: method {request.method}")
        if request.url.path != expected["path"]:
            self.problems.append(f"request {index}: path {request.url.path}")
        self.problems.extend(
            f"request {index} body {p}" for p in mismatches(expected.get("json", {}), body)
        )
        response = recorded["response"]
        content = json.dumps(response["body"]).replace(API_KEY_PLACEHOLDER, sent_key(request))
        return httpx2.Response(
            response["status"], headers=response.get("headers", {}), content=content.encode()
        )

    def client(self) -> httpx2.Client:
        client = httpx2.Client(transport=httpx2.MockTransport(self.handler))
        self._clients.append(client)
        return client

    def async_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler))

    def verify(self) -> None:
        """Every recorded exchange was used, and every request matched its recording."""
        assert not self.problems, f"{self.name}: " + "; ".join(self.problems)
        assert len(self.requests) == len(self.exchanges), (
            f"{self.name}: {len(self.requests)} request(s) made, {len(self.exchanges)} recorded"
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()


def last_user_message(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    content: str = users[-1]["content"]
    return content


def embedded_json(text: str) -> Any:
    """The first JSON object inside `text` (how a schema is embedded in an instruction)."""
    value, _ = json.JSONDecoder().raw_decode(text, text.index("{"))
    return value


def closed_local_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, read, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class LlamaServer:
    """A running llama_cpp.server (the `llama_server` fixture)."""

    root: str  # http://127.0.0.1:<port>
    model_id: str  # the id GET /v1/models lists

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

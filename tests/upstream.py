"""A scripted OpenAI-compatible upstream on 127.0.0.1 for gateway and provider tests.

Each POST /v1/chat/completions takes the next step of its script and keeps the request body
it was sent (`bodies`). A step is one of:

- a choice dict, or a list of them for a request with `n` (tool calls, text, logprobs: build
  them with `answer` and `tool_call`), billed with `USAGE`;
- `Answer`: one text choice with the usage it bills;
- `Fail`: an error status and body; `Hang`: no answer until the upstream closes;
- `CutStream`: SSE chunks, then the connection dropped before the end;
- `Raw`: exactly these bytes with this status and content type (what a broken server sends).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


@dataclass(frozen=True)
class Answer:
    content: str
    usage: dict[str, Any]


@dataclass(frozen=True)
class Fail:
    status: int
    error: dict[str, Any]


@dataclass(frozen=True)
class Hang:
    """No answer until the upstream is shut down (the caller's timeout fires first)."""


@dataclass(frozen=True)
class CutStream:
    """SSE chunks sent with chunked encoding, then the connection dropped before the end."""

    chunks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Raw:
    status: int
    body: bytes
    content_type: str = "application/json"


Choices = dict[str, Any] | list[dict[str, Any]]
Step = Answer | Fail | Hang | CutStream | Raw | Choices


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def answer(
    content: str | None = None,
    calls: list[dict[str, Any]] | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One choice of a chat completion, as OpenAI sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "index": 0,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": "tool_calls" if calls else "stop",
    }


class ScriptedUpstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Iterable[Step]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[Step] = deque(script)
        self.bodies: list[dict[str, Any]] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_step(self, body: dict[str, Any]) -> Step | None:
        with self._lock:
            self.bodies.append(body)
            return self.script.popleft() if self.script else None

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


def _completion(model: str, choices: list[dict[str, Any]], usage: dict[str, Any]) -> Any:
    return {
        "id": "up-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{**c, "index": i} for i, c in enumerate(choices)],
        "usage": usage,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedUpstream

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        step = self.server.next_step(body)
        model = str(body.get("model"))
        if isinstance(step, Answer):
            self._json(200, _completion(model, [answer(step.content)], step.usage))
        elif isinstance(step, dict | list):
            self._json(200, _completion(model, step if isinstance(step, list) else [step], USAGE))
        elif isinstance(step, Fail):
            self._json(step.status, {"error": step.error})
        elif isinstance(step, Hang):
            self.server.released.wait(30)
            self.close_connection = True
        elif isinstance(step, CutStream):
            self._cut_stream(model, step)
        elif isinstance(step, Raw):
            self._send(step.status, step.body, step.content_type)
        else:
            self._json(500, {"error": {"message": "the script has no step for this request"}})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _cut_stream(self, model: str, step: CutStream) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        head = {"object": "chat.completion.chunk", "id": "up-1", "created": 0, "model": model}
        for chunk in step.chunks:
            event = b"data: " + json.dumps({**head, **chunk}).encode() + b"\n\n"
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.flush()
        # No terminating chunk: the reader sees the body end mid-message.
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass

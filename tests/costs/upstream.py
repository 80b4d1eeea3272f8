"""A scripted OpenAI-compatible upstream on 127.0.0.1: each POST /v1/chat/completions takes the
next step of its script (an answer with the usage it bills, an error, a hang, a stream cut
mid-way) and keeps the request body it was sent."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


Step = Answer | Fail | Hang | CutStream


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedUpstream

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        step = self.server.next_step(body)
        if isinstance(step, Answer):
            self._json(200, _completion(body["model"], step))
        elif isinstance(step, Fail):
            self._json(step.status, {"error": step.error})
        elif isinstance(step, Hang):
            self.server.released.wait(30)
            self.close_connection = True
        elif isinstance(step, CutStream):
            self._cut_stream(body["model"], step)
        else:
            self._json(500, {"error": {"message": "the script has no step for this request"}})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
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


def _completion(model: str, step: Answer) -> dict[str, Any]:
    return {
        "id": "up-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": step.content},
                "finish_reason": "stop",
            }
        ],
        "usage": step.usage,
    }

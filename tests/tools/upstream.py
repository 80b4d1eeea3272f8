"""A scripted OpenAI-compatible upstream on 127.0.0.1: each POST /v1/chat/completions answers
with the next step of its script (one choice, or a list of choices for a request with `n`:
tool calls, text, logprobs) and keeps the body it was sent."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


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


class ToolUpstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Iterable[dict[str, Any] | list[dict[str, Any]]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[dict[str, Any] | list[dict[str, Any]]] = deque(script)
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_choices(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        with self._lock:
            self.bodies.append(body)
            if not self.script:
                return None
            step = self.script.popleft()
            return step if isinstance(step, list) else [step]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ToolUpstream

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        choices = self.server.next_choices(body)
        if choices is None:
            self._json(500, {"error": {"message": "the script has no step for this request"}})
            return
        self._json(
            200,
            {
                "id": "up-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{**c, "index": i} for i, c in enumerate(choices)],
                "usage": USAGE,
            },
        )

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass

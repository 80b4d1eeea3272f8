"""OpenAI-compatible upstreams on 127.0.0.1 that answer by rule rather than by script: each
request's reply is a function of its body (so any number of callers, in any order, see the
same behaviour), and every body is kept per model."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    content: str = ""
    usage: tuple[int, int] = (10, 5)  # prompt, completion tokens
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait before answering (a hang, when longer than the caller waits)
    reset: bool = False  # drop the connection without an answer


Rule = Callable[[dict[str, Any]], Reply]


class RuleUpstream(ThreadingHTTPServer):
    daemon_threads = True
    # A burst of callers must not overflow the listen backlog (socketserver's default is 5):
    # dropped connections wait for TCP to retransmit, seconds that are the test server's.
    request_queue_size = 1024

    def __init__(self, rules: dict[str, Rule]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rules = rules
        self.bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.closing = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def calls(self, model: str) -> int:
        with self._lock:
            return len(self.bodies[model])

    def reply(self, body: dict[str, Any]) -> Reply:
        model = str(body.get("model"))
        with self._lock:
            self.bodies[model].append(body)
        rule = self.rules.get(model)
        if rule is None:
            return Reply(404, json.dumps({"error": {"message": f"no model {model}"}}))
        return rule(body)

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RuleUpstream

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        reply = self.server.reply(body)
        if reply.delay_s and self.server.closing.wait(reply.delay_s):
            self.close_connection = True
            return
        if reply.reset:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if reply.status >= 400:
            self._send(reply.status, reply.content.encode(), reply.headers)
            return
        if body.get("stream"):
            self._stream(body, reply)
            return
        payload = {
            "id": "up-1",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(reply),
        }
        self._send(200, json.dumps(payload).encode(), reply.headers)

    def _stream(self, body: dict[str, Any], reply: Reply) -> None:
        head = {"object": "chat.completion.chunk", "id": "up-1", "created": 0,
                "model": body.get("model")}  # fmt: skip
        events = [
            {**head, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            for word in re.findall(r"\S+\s*", reply.content)
        ]
        events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**head, "choices": [], "usage": _usage(reply)})
        data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        self._send(200, data + b"data: [DONE]\n\n", {"content-type": "text/event-stream"})

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", headers.get("content-type", "application/json"))
        for name, value in headers.items():
            if name != "content-type":
                self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def _usage(reply: Reply) -> dict[str, int]:
    prompt, completion = reply.usage
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip

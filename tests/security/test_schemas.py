"""Schemas sent by callers cannot make the server open a URL or read a file, and cannot crash it
by nesting: every such schema is a 400 that names the keyword and where it stands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway
from tether import Contract
from tether.contracts import SchemaValidator
from tether.contracts.guard import MAX_SCHEMA_DEPTH
from tether.errors import SchemaError

SECRET = "tether-canary-file-content-7f3a"


class Canary(ThreadingHTTPServer):
    """A loopback HTTP server that records every request it receives and answers with a
    schema that would be accepted, so that a fetch would go unnoticed but for the record."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.paths: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"


class _Recorder(BaseHTTPRequestHandler):
    server: Canary

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        body = b'{"type": "object"}'
        self.send_response(200)
        self.send_header("content-type", "application/schema+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file that is valid JSON Schema, so that reading it would succeed."""
    path = tmp_path / "secret.json"
    path.write_text(f'{{"title": "{SECRET}", "type": "object"}}')
    return path


def _hostile_schemas(canary: Canary, secret_file: Path) -> list[tuple[dict[str, Any], str, str]]:
    """(schema, keyword named in the error, JSON pointer named in the error)."""
    file_url = secret_file.as_uri()
    return [
        ({"$schema": canary.url("meta")}, "$schema", "/$schema"),
        ({"$schema": "file:///etc/passwd"}, "$schema", "/$schema"),
        ({"$schema": file_url}, "$schema", "/$schema"),
        ({"$ref": canary.url("ref")}, "$ref", "/$ref"),
        ({"$ref": file_url}, "$ref", "/$ref"),
        (
            {"type": "object", "properties": {"a": {"$ref": canary.url("nested")}}},
            "$ref",
            "/properties/a/$ref",
        ),
        (
            {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "file:///etc/passwd"}}},
            "$ref",
            "/$defs/a/$ref",
        ),
        ({"$id": canary.url("base/"), "$ref": "other.json"}, "$ref", "/$ref"),
        ({"$dynamicRef": canary.url("dynamic")}, "$dynamicRef", "/$dynamicRef"),
    ]


def test_gateway_never_fetches_or_reads_what_a_schema_names(
    live: LiveGateway, canary: Canary, secret_file: Path
) -> None:
    client = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
    for schema, keyword, pointer in _hostile_schemas(canary, secret_file):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model="fake",
                messages=[{"role": "user", "content": "hi"}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "out", "schema": schema},
                },
            )
        text = err.value.response.text
        assert err.value.status_code == 400, text
        assert keyword in text, (schema, text)
        assert f"at {pointer}" in text, (schema, text)
        assert SECRET not in text
        assert "root:" not in text  # nothing of /etc/passwd
    assert canary.paths == []


def test_contracts_never_fetch_or_read(canary: Canary, secret_file: Path) -> None:
    for schema, keyword, pointer in _hostile_schemas(canary, secret_file):
        with pytest.raises(SchemaError) as err:
            Contract.from_schema(schema)
        assert err.value.pointer == pointer
        assert keyword in err.value.message
        assert SECRET not in str(err.value)
        with pytest.raises(SchemaError):
            SchemaValidator(schema)
    assert canary.paths == []


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"},
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "string"},
        {"$ref": "#/$defs/name", "$defs": {"name": {"type": "string"}}},
        {"$ref": "#/definitions/name", "definitions": {"name": {"type": "string"}}},
    ],
)
def test_bundled_drafts_and_local_references_still_work(schema: dict[str, Any]) -> None:
    validator = SchemaValidator(schema)
    assert validator.is_valid("text")
    assert not validator.is_valid(3)


def test_a_property_named_schema_is_a_property() -> None:
    validator = SchemaValidator(
        {"type": "object", "properties": {"$schema": {"type": "string"}}, "required": ["$schema"]}
    )
    assert validator.is_valid({"$schema": "x"})
    assert not validator.is_valid({"$schema": 3})


def _nested_properties(depth: int) -> str:
    return '{"type":"object","properties":{"a":' * depth + "{}" + "}}" * depth


def _nested_items(depth: int) -> str:
    return '{"items":' * depth + "{}" + "}" * depth


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """A gateway that takes bodies of up to 1 MiB, so that deep schemas reach the parser."""
    settings = gateway_settings(tmp_path_factory.mktemp("roomy"), max_body_bytes=1024 * 1024)
    with live_gateway(settings) as running:
        yield running


@pytest.mark.parametrize("depth", [126, 1000, 10_000])
@pytest.mark.parametrize("nest", [_nested_properties, _nested_items])
def test_deep_schemas_are_a_400_not_a_500(roomy: LiveGateway, depth: int, nest: Any) -> None:
    body = (
        '{"model":"fake","messages":[{"role":"user","content":"hi"}],'
        '"response_format":{"type":"json_schema","json_schema":{"name":"deep","schema":'
        + nest(depth)
        + "}}}"
    )
    headers = {"authorization": f"Bearer {roomy.key}", "content-type": "application/json"}
    response = httpx2.post(
        f"{roomy.v1}/chat/completions", content=body, headers=headers, timeout=60
    )
    # Past the JSON parser's own depth limit the body is refused as invalid JSON: a 400 too.
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["type"] == "invalid_request_error"
    if depth == 126:
        assert f"nested more than {MAX_SCHEMA_DEPTH} levels" in response.text
    assert httpx2.get(f"{roomy.url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("depth", [126, 1000, 10_000])
def test_deep_schemas_are_refused_before_any_walk(depth: int) -> None:
    schema: dict[str, Any] = {}
    inner = schema
    for _ in range(depth):
        inner["items"] = {}
        inner = inner["items"]
    with pytest.raises(SchemaError, match=f"nested more than {MAX_SCHEMA_DEPTH} levels"):
        Contract.from_schema(schema)


def test_schemas_within_the_bound_still_compile() -> None:
    schema: dict[str, Any] = {"type": "array"}
    inner = schema
    for _ in range(MAX_SCHEMA_DEPTH // 2 - 1):
        inner["items"] = {"type": "array"}
        inner = inner["items"]
    contract = Contract.from_schema(schema)
    enforced, _ = contract.enforcement_schema()
    assert enforced == schema

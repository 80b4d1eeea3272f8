"""/docs works without network access and shows every route's request body."""

from __future__ import annotations

import httpx2

from .conftest import LiveGateway


def test_docs_page_loads_its_assets_from_the_gateway(live: LiveGateway) -> None:
    page = httpx2.get(f"{live.url}/docs", timeout=30)
    assert page.status_code == 200
    assert "cdn." not in page.text  # nothing fetched from a CDN
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"):
        assert asset in page.text
        fetched = httpx2.get(f"{live.url}{asset}", timeout=30)
        assert fetched.status_code == 200
        assert len(fetched.content) > 10_000


def test_openapi_documents_request_bodies(live: LiveGateway) -> None:
    document = httpx2.get(f"{live.url}/openapi.json", timeout=30).json()
    paths = document["paths"]
    for path in ("/v1/chat/completions", "/v1/embeddings", "/v1/prompts/{name}/run",
                 "/v1/feedback", "/admin/keys", "/admin/prompts"):  # fmt: skip
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"], path
    chat = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert "messages" in chat["schema"]["required"]
    # every reference resolves inside the document
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []

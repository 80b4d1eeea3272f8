"""`/v1/embeddings` on the bundled embedder (`local-embed`, all-MiniLM-L6-v2 int8 ONNX), through
the official openai SDK (which asks for base64 unless told otherwise) and LangChain's
OpenAIEmbeddings, plus the request fields the gateway refuses."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from sqlalchemy import select

from tether.cache.embedders.base import cosine
from tether.cache.embedders.minilm import MiniLMEmbedder
from tether.providers.local_embed import LocalEmbedProvider
from tether.store.tables import requests

from .conftest import LiveGateway, gateway_settings, live_gateway

MODEL = "local-embed"
GUITAR = "A man is playing a guitar."
PARAPHRASE = "Someone plays the guitar."
UNRELATED = "The stock market fell sharply today."


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with live_gateway(gateway_settings(tmp_path_factory.mktemp("embeddings"))) as running:
        yield running


@pytest.fixture(scope="module")
def reference() -> MiniLMEmbedder:
    """The embedder itself, outside the gateway: what the answers must equal."""
    return MiniLMEmbedder()


def sdk(gw: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0)


def _similarities(vectors: Sequence[Sequence[float]]) -> tuple[float, float]:
    return cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])


def test_the_sdk_default_is_base64_and_decodes_to_the_embedders_vectors(
    gw: LiveGateway, reference: MiniLMEmbedder
) -> None:
    texts = [GUITAR, PARAPHRASE, UNRELATED]
    raw = sdk(gw).embeddings.with_raw_response.create(model=MODEL, input=texts)
    wire = raw.http_response.json()
    assert all(isinstance(item["embedding"], str) for item in wire["data"])
    first = np.frombuffer(base64.b64decode(wire["data"][0]["embedding"]), dtype="<f4")
    result = raw.parse()
    vectors = [item.embedding for item in result.data]
    assert [item.index for item in result.data] == [0, 1, 2]
    assert [len(v) for v in vectors] == [384, 384, 384]
    np.testing.assert_array_equal(first, np.asarray(vectors[0], dtype=np.float32))
    np.testing.assert_allclose(vectors, reference.embed(texts), atol=1e-6)
    paraphrase, unrelated = _similarities(vectors)
    assert paraphrase > unrelated + 0.3
    assert result.model == MODEL
    assert result.usage.prompt_tokens == reference.count_tokens(texts)
    assert result.usage.total_tokens == result.usage.prompt_tokens


def test_float_format_and_a_single_string(gw: LiveGateway, reference: MiniLMEmbedder) -> None:
    raw = sdk(gw).embeddings.with_raw_response.create(
        model=MODEL, input=GUITAR, encoding_format="float", dimensions=384
    )
    (item,) = raw.http_response.json()["data"]
    assert isinstance(item["embedding"], list)
    assert all(isinstance(x, float) for x in item["embedding"])
    np.testing.assert_allclose(item["embedding"], reference.embed([GUITAR])[0], atol=1e-6)
    assert raw.parse().usage.prompt_tokens == reference.count_tokens([GUITAR])


def test_each_call_is_logged_with_the_embedders_token_count(
    gw: LiveGateway, reference: MiniLMEmbedder
) -> None:
    raw = sdk(gw).embeddings.with_raw_response.create(model=MODEL, input=[UNRELATED, "ok"])
    request_id = raw.headers["x-tether-request-id"]
    assert gw.gateway.log.flush()
    with gw.gateway.engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.id == request_id)).one()
    assert (row.status, row.model, row.provider) == (200, MODEL, "local_embed")
    assert row.input_tokens == reference.count_tokens([UNRELATED, "ok"])


def _bad_request(gw: LiveGateway, **body: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as err:
        sdk(gw).embeddings.create(**{"model": MODEL, "input": GUITAR, **body})
    return err.value


def _param(err: openai.BadRequestError) -> object:
    body = err.body
    assert isinstance(body, dict)
    return body.get("param")


def test_token_arrays_are_refused_with_the_langchain_setting(gw: LiveGateway) -> None:
    for tokens in ([[32, 893, 374]], [32, 893, 374]):
        err = _bad_request(gw, input=tokens)
        assert _param(err) == "input"
        assert "check_embedding_ctx_length=False" in str(err)


@pytest.mark.parametrize("bad", [[], [GUITAR, 3], [[]], {"text": GUITAR}, [True]])
def test_malformed_input_is_refused(gw: LiveGateway, bad: object) -> None:
    assert _param(_bad_request(gw, input=bad)) == "input"


def test_an_empty_string_is_a_text(gw: LiveGateway) -> None:
    (item,) = sdk(gw).embeddings.create(model=MODEL, input="").data
    assert len(item.embedding) == 384


def test_other_dimensions_are_refused_never_truncated(gw: LiveGateway) -> None:
    err = _bad_request(gw, dimensions=256)
    assert _param(err) == "dimensions"
    assert "384" in str(err)
    # The row says what the caller got: refused, with the embedding it was billed for.
    assert gw.gateway.log.flush(5)
    request_id = err.response.headers["x-tether-request-id"]
    with gw.gateway.engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.id == request_id)).one()
    assert row.status == 400
    assert row.input_tokens > 0
    assert _param(_bad_request(gw, dimensions=0)) == "dimensions"


def test_an_unknown_encoding_format_is_refused(gw: LiveGateway) -> None:
    assert _param(_bad_request(gw, encoding_format="int8")) == "encoding_format"


def test_a_chat_model_still_has_no_embeddings(gw: LiveGateway) -> None:
    err = _bad_request(gw, model="local")
    assert "no embeddings" in str(err)


def test_langchain_openai_embeddings(gw: LiveGateway, reference: MiniLMEmbedder) -> None:
    # By default LangChain tokenizes with tiktoken and sends token ids: ask it for text.
    embeddings = OpenAIEmbeddings(
        model=MODEL,
        base_url=gw.v1,
        api_key=gw.key,  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    documents = embeddings.embed_documents([GUITAR, PARAPHRASE, UNRELATED])
    paraphrase, unrelated = _similarities(documents)
    assert paraphrase > unrelated + 0.3
    query = asyncio.run(embeddings.aembed_query(GUITAR))
    np.testing.assert_allclose(query, documents[0], atol=1e-6)
    np.testing.assert_allclose(query, reference.embed([GUITAR])[0], atol=1e-6)


class _ThreadRecorder(MiniLMEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def embed(self, texts: Sequence[str]) -> Any:
        self.threads.append(threading.get_ident())
        return super().embed(texts)


async def test_the_onnx_run_happens_off_the_event_loop() -> None:
    embedder = _ThreadRecorder()
    provider = LocalEmbedProvider(embedder, model=MODEL)
    vectors, usage = await provider.aembed([GUITAR])
    assert len(vectors[0]) == 384
    assert usage.input_tokens == embedder.count_tokens([GUITAR])
    assert embedder.threads
    assert threading.get_ident() not in embedder.threads


def test_the_embedder_makes_no_text(tmp_path: Path) -> None:
    from tether import Client
    from tether.errors import InvalidRequest

    # The library refuses it as the gateway does (one pipeline): before any call, naming it.
    settings = gateway_settings(tmp_path)
    with Client(settings) as client, pytest.raises(InvalidRequest, match="only embeds") as err:
        client.generate("hello", model=MODEL)
    assert err.value.param == "model"


def test_chat_with_the_embedding_model_is_a_400_naming_the_model(live: LiveGateway) -> None:
    refused = httpx2.post(
        f"{live.v1}/chat/completions",
        json={"model": "local-embed", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {live.key}"},
        timeout=30,
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "model"

"""The learned router's `embedding` and `max_tokens`: stored in the router file, honoured when
it loads, refused when the settings name another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from tether.cache.embedders import FakeEmbedder
from tether.cache.embedders.minilm_static import StaticMiniLMEmbedder, word_embeddings
from tether.errors import ConfigError, ModelFileError
from tether.messages import Message
from tether.routing import RouteInput, build_policy
from tether.routing.config import LearnedRouterSettings
from tether.routing.learned.dataset import Outcomes
from tether.routing.learned.embedding import NoEmbedding, TokenCut, router_embedder
from tether.routing.learned.features import text_features
from tether.routing.learned.model import TrainedRouter
from tether.routing.learned.train import TrainOptions, train_router
from tether.routing.policies.learned import LearnedPolicy, embedder_for
from tether.settings import ModelSettings, Settings

MODELS = {"small": ModelSettings(provider="fake"), "large": ModelSettings(provider="fake")}


def ask(text: str) -> RouteInput:
    return RouteInput(messages=(Message("user", text),))


def settings_for(path: Path, **routers: dict[str, Any]) -> Settings:
    base = {"policy": "learned", "cheap": "small", "premium": "large", "path": path}
    tables: dict[str, Any] = {name: {**base, **extra} for name, extra in routers.items()}
    return Settings(models=MODELS, routers=tables)


@pytest.fixture(scope="module")
def features_only(gsm8k: Outcomes) -> TrainedRouter:
    return train_router(gsm8k, FakeEmbedder(64), TrainOptions(folds=3, embedding="none"))


@pytest.fixture(scope="module")
def static(mmlu: Outcomes) -> TrainedRouter:
    return train_router(mmlu, FakeEmbedder(64), TrainOptions(folds=3, embedding="minilm-static"))


def test_features_only_round_trip(
    features_only: TrainedRouter, gsm8k: Outcomes, tmp_path: Path
) -> None:
    assert (features_only.embedding, features_only.max_tokens) == ("none", None)
    assert (features_only.embedder, features_only.dimensions) == ("none", 0)
    assert features_only.blend == 1.0 or features_only.k > 0
    path = tmp_path / "r.npz"
    features_only.save(path)
    loaded = TrainedRouter.load(path)
    assert (loaded.embedding, loaded.max_tokens, loaded.embedder) == ("none", None, "none")
    texts = gsm8k.texts[:30]
    vectors, features = NoEmbedding().embed(texts), text_features(texts)
    assert vectors.shape == (30, 0)
    before = [p.gain for p in features_only.predict(vectors, features)]
    assert [p.gain for p in loaded.predict(vectors, features)] == pytest.approx(before, abs=1e-5)
    # Settings that leave `embedding` unset take the file's; naming it the same is accepted.
    settings = settings_for(path, plain={}, named={"embedding": "none"})
    for name in ("plain", "named"):
        policy = build_policy(name, settings)
        assert isinstance(policy, LearnedPolicy)
        assert isinstance(policy.embedder, NoEmbedding)
        assert policy.decide(ask(texts[0])).model in {"small", "large"}


def test_another_embedding_or_cut_is_refused(features_only: TrainedRouter, tmp_path: Path) -> None:
    path = tmp_path / "r.npz"
    features_only.save(path)
    settings = settings_for(
        path,
        static={"embedding": "minilm-static"},
        cut={"max_tokens": 64},
        model={"embedding": "minilm"},
    )
    for name in ("static", "cut", "model"):
        with pytest.raises(ConfigError) as caught:
            build_policy(name, settings)
        assert caught.value.field == f"routers.{name}.path"
        assert "trained with embedding 'none', max_tokens None" in caught.value.message
        assert "`embedding` = 'none' and leave `max_tokens` unset" in (caught.value.fix or "")
    with pytest.raises(ConfigError, match="max_tokens 32"):
        TrainedRouter.load(path, embedding="none", max_tokens=32)


def test_a_file_without_embedding_reads_as_whole_minilm(
    features_only: TrainedRouter, tmp_path: Path
) -> None:
    path = tmp_path / "r.npz"
    features_only.save(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    del meta["embedding"], meta["max_tokens"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = tmp_path / "old.npz"
    np.savez_compressed(old, **arrays)
    loaded = TrainedRouter.load(old)
    assert (loaded.embedding, loaded.max_tokens) == ("minilm", None)
    with pytest.raises(ConfigError, match="trained with embedding 'minilm'"):
        TrainedRouter.load(old, embedding="minilm-static")


def test_an_unknown_embedding_in_the_file_is_refused(
    features_only: TrainedRouter, tmp_path: Path
) -> None:
    features_only.embedding = "word2vec"
    try:
        features_only.save(tmp_path / "r.npz")
    finally:
        features_only.embedding = "none"
    with pytest.raises(ConfigError, match="inconsistent"):
        TrainedRouter.load(tmp_path / "r.npz")


def test_settings_check_embedding_and_max_tokens(tmp_path: Path) -> None:
    base = {"policy": "learned", "cheap": "a", "premium": "b", "path": tmp_path / "r.npz"}
    assert LearnedRouterSettings.model_validate(base).embedding is None
    assert LearnedRouterSettings.model_validate({**base, "max_tokens": 64}).max_tokens == 64
    with pytest.raises(ValidationError):
        LearnedRouterSettings.model_validate({**base, "embedding": "word2vec"})
    with pytest.raises(ValidationError):
        LearnedRouterSettings.model_validate({**base, "max_tokens": 2})


def test_token_cut_reads_the_first_tokens_only(gsm8k: Outcomes, tmp_path: Path) -> None:
    cut = TokenCut(FakeEmbedder(64), 8)
    assert cut.name == "fake-64-max8"
    long = "one two three four five six seven eight nine ten eleven"
    short = "one two three"
    # 8 tokens with [CLS] and [SEP]: six words.
    assert cut.cut([long, short]) == ["one two three four five six", short]
    assert np.allclose(cut.embed([long]), FakeEmbedder(64).embed(["one two three four five six"]))
    router = train_router(
        gsm8k, FakeEmbedder(64), TrainOptions(folds=3, embedding="minilm", max_tokens=8)
    )
    assert (router.embedder, router.embedding, router.max_tokens) == ("fake-64-max8", "minilm", 8)
    router.save(tmp_path / "r.npz")
    settings = settings_for(
        tmp_path / "r.npz", fake={"embedder": "fake"}, whole={"embedder": "fake", "max_tokens": 256}
    )
    policy = build_policy("fake", settings)
    assert isinstance(policy, LearnedPolicy)
    assert isinstance(policy.embedder, TokenCut)
    assert policy.decide(ask(gsm8k.texts[0])).model in {"small", "large"}
    with pytest.raises(ConfigError, match="max_tokens 256"):
        build_policy("whole", settings)


def test_static_minilm_vectors() -> None:
    embedder = StaticMiniLMEmbedder()
    assert (embedder.name, embedder.dimensions) == ("all-MiniLM-L6-v2-static", 384)
    assert StaticMiniLMEmbedder(max_tokens=64).name == "all-MiniLM-L6-v2-static-max64"
    texts = [
        "What is the derivative of x squared?",
        "Compute the derivative of x cubed.",
        "Which treaty ended the Thirty Years' War?",
        "",
    ]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors[:3], axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert not vectors[3].any()  # only special tokens: no words, a zero row
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert np.array_equal(embedder.embed(texts[:1]), vectors[:1])
    assert embedder.embed([]).shape == (0, 384)
    # A cut at 5 tokens ([CLS] + 3 words + [SEP]) reads the first three words only.
    five = StaticMiniLMEmbedder(max_tokens=5).embed(["what is the derivative of x"])
    assert np.allclose(five, embedder.embed(["what is the"]), atol=1e-6)


def test_static_weights_file_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        word_embeddings(b"\x02\x00\x00\x00\x00\x00\x00\x00{}", "w.safetensors")
    header = json.dumps(
        {
            "embeddings.word_embeddings.weight": {
                "dtype": "F16",
                "shape": [2, 2],
                "data_offsets": [0, 8],
            }
        }
    ).encode()
    raw = len(header).to_bytes(8, "little") + header + bytes(8)
    with pytest.raises(ModelFileError, match="expected F32"):
        word_embeddings(raw, "w.safetensors")
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(raw)
    with pytest.raises(ModelFileError, match="expected F32"):
        StaticMiniLMEmbedder(weights_path=bad).embed(["hello"])
    with pytest.raises(ModelFileError, match="cannot read"):
        StaticMiniLMEmbedder(weights_path=tmp_path / "missing").embed(["hello"])


def test_static_router_end_to_end(static: TrainedRouter, mmlu: Outcomes, tmp_path: Path) -> None:
    assert (static.embedder, static.embedding, static.max_tokens) == (
        "all-MiniLM-L6-v2-static", "minilm-static", None,
    )  # fmt: skip
    assert static.dimensions == 384
    path = tmp_path / "r.npz"
    static.save(path)
    settings = settings_for(path, plain={}, named={"embedding": "minilm-static"},
                            wrong={"embedding": "minilm"})  # fmt: skip
    policy = build_policy("named", settings)
    assert isinstance(policy, LearnedPolicy)
    assert policy.embedder is router_embedder("minilm-static", None)  # one table per process
    scored = policy.score(ask(mmlu.texts[0]), neighbours=3)
    assert scored.prediction is not None
    nearest, similarity = scored.prediction.neighbours[0]
    assert nearest == 0
    assert similarity == pytest.approx(1.0, abs=1e-2)
    assert isinstance(build_policy("plain", settings), LearnedPolicy)
    with pytest.raises(ConfigError, match="embedding 'minilm-static'"):
        build_policy("wrong", settings)


def test_router_embedder_kinds() -> None:
    assert isinstance(router_embedder("none", None), NoEmbedding)
    fake = FakeEmbedder(64)
    assert router_embedder("minilm", None, fake) is fake
    assert router_embedder("minilm", 16, fake).name == "fake-64-max16"
    with pytest.raises(ValueError, match="unknown embedding"):
        router_embedder("word2vec", None, fake)


def test_embedder_for_a_loaded_file(
    features_only: TrainedRouter, static: TrainedRouter, gsm8k: Outcomes, tmp_path: Path
) -> None:
    """What `tether route eval --data` and `route explain --file` need: the file's embedder."""
    path = tmp_path / "r.npz"
    assert isinstance(embedder_for(features_only, "minilm", path=path), NoEmbedding)
    assert embedder_for(static, "fake", path=path).name == "all-MiniLM-L6-v2-static"
    fake = train_router(
        gsm8k, FakeEmbedder(64), TrainOptions(folds=3, max_tokens=16, embedding="minilm")
    )
    assert embedder_for(fake, "fake", path=path).name == "fake-64-max16"
    with pytest.raises(ConfigError, match="trained on embedder 'fake-64-max16'") as caught:
        embedder_for(fake, "fake", path=path, field="routers.x.path", model=FakeEmbedder(32))
    assert caught.value.field == "routers.x.path"

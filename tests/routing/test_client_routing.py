"""Routers through `tether.Client`: the model a router picks is the one that gets called."""

from __future__ import annotations

from pathlib import Path

from tether import Client, FakeProvider
from tether.cache.embedders import FakeEmbedder
from tether.routing.learned.dataset import Outcome, Outcomes
from tether.routing.learned.train import TrainOptions, train_router
from tether.settings import ModelSettings, Settings

MODELS = {"small": ModelSettings(provider="fake"), "large": ModelSettings(provider="fake")}


def fakes() -> tuple[FakeProvider, FakeProvider]:
    return FakeProvider(respond=lambda _: "from small"), FakeProvider(
        respond=lambda _: "from large"
    )


def test_rules_router_calls_the_chosen_model_or_none(tmp_path: Path) -> None:
    settings = Settings(
        cache_dir=tmp_path,
        models=MODELS,
        routers={
            "support": {
                "policy": "rules",
                "default": "small",
                "rules": [
                    {"keywords": ["refund"], "model": "large"},
                    {"regex": r"^hi\b", "answer": "Hello!"},
                ],
            }
        },
    )
    small, large = fakes()
    with Client(settings, providers={"small": small, "large": large}) as client:
        assert client.generate("hi there", model="router:support").output == "Hello!"
        assert (small.calls, large.calls) == ([], [])  # answered without any model
        assert client.generate("a refund, now", model="router:support").output == "from large"
        assert client.generate("what's new?", model="router:support").output == "from small"
    assert (len(small.calls), len(large.calls)) == (1, 1)


def test_learned_router_sends_hard_requests_to_premium(tmp_path: Path) -> None:
    rows = [
        Outcome(f"prove the theorem about integrals, case {i}", False, True) for i in range(30)
    ] + [Outcome(f"say hello to the team, note {i}", True, True) for i in range(30)]
    router = train_router(
        Outcomes(tuple(rows)), FakeEmbedder(64), TrainOptions(folds=3, embedding="minilm")
    )
    router.save(tmp_path / "r.npz")
    settings = Settings(
        cache_dir=tmp_path,
        models=MODELS,
        routers={
            "smart": {
                "policy": "learned",
                "cheap": "small",
                "premium": "large",
                "path": tmp_path / "r.npz",
                "embedder": "fake",
            }
        },
    )
    small, large = fakes()
    with Client(settings, providers={"small": small, "large": large}) as client:
        hard = client.generate("prove this theorem on integrals", model="router:smart")
        easy = client.generate("say hello to everyone", model="router:smart")
    assert hard.output == "from large"
    assert easy.output == "from small"

"""examples/customer_feedback/tether.toml: its `[routers.feedback]` loads, names the two local
models, and routes between them once a router file exists (trained here on made-up outcomes
with the fake embedder, so no model runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.cache.embedders.testing import FakeEmbedder
from tether.errors import ConfigError
from tether.messages import Message
from tether.routing.base import RouteInput
from tether.routing.config import LearnedRouterSettings
from tether.routing.learned.dataset import Outcome, Outcomes
from tether.routing.learned.train import train_router
from tether.routing.registry import build_policy
from tether.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "customer_feedback" / "tether.toml"


def _settings(router_file: Path) -> Settings:
    settings = Settings.load(CONFIG, environ={})
    feedback = settings.routers["feedback"]
    return settings.model_copy(
        update={"routers": {"feedback": feedback.model_copy(update={"path": router_file})}}
    )


def test_the_example_routes_between_the_two_local_models() -> None:
    feedback = Settings.load(CONFIG, environ={}).routers["feedback"]
    assert isinstance(feedback, LearnedRouterSettings)
    assert (feedback.cheap, feedback.premium) == ("local-small", "local")


def test_a_trained_file_makes_the_router_send_hard_reviews_to_premium(tmp_path: Path) -> None:
    # the cheap model fails the sarcastic reviews, the premium one passes everything
    rows = [Outcome(f"great food and friendly staff {i}", True, True) for i in range(20)]
    rows += [Outcome(f"oh great, another cold sarcastic soup {i}", False, True) for i in range(20)]
    embedder = FakeEmbedder()
    router_file = tmp_path / "feedback.npz"
    train_router(Outcomes(tuple(rows)), embedder).save(router_file)
    policy = build_policy("feedback", _settings(router_file), embedder=embedder)

    def model_for(text: str) -> str | None:
        return policy.decide(RouteInput(messages=(Message("user", text),))).model

    assert model_for("oh great, another cold sarcastic soup") == "local"
    assert model_for("great food and friendly staff") == "local-small"


def test_without_its_router_file_the_error_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_policy("feedback", _settings(tmp_path / "absent.npz"), embedder=FakeEmbedder())
    assert "routers.feedback.path" in caught.value.message

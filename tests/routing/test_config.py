"""Router settings: loaded from tether.toml, checked with errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ConfigError
from tether.messages import Message
from tether.routing import RouteInput, build_policy, router_name
from tether.settings import Settings

MODELS = """
[models.cheap]
provider = "fake"
[models.premium]
provider = "fake"
"""


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "tether.toml"
    path.write_text(MODELS + text)
    return Settings.load(path, environ={})


def test_each_kind_loads_and_builds(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
[routers.one]
policy = "fixed"
model = "premium"
fallbacks = ["cheap"]

[routers.split]
policy = "weighted"
seed = "exp"
models = [{model = "cheap", weight = 3}, {model = "premium", weight = 1}]

[routers.support]
policy = "rules"
default = "cheap"
[[routers.support.rules]]
keywords = ["refund"]
model = "premium"
[[routers.support.rules]]
regex = "^hi\\\\b"
answer = "Hello!"
""",
    )
    assert settings.routers["one"].fallbacks == ["cheap"]
    request = RouteInput(messages=(Message("user", "hi there"),), request_id="r1")
    assert build_policy("one", settings).decide(request).model == "premium"
    assert build_policy("split", settings).decide(request).model in {"cheap", "premium"}
    assert build_policy("support", settings).decide(request).answer == "Hello!"


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('policy = "fixed"\nmodel = "cheap"\ncolour = "red"', "routers.x.fixed.colour"),
        ('policy = "magic"', "routers.x"),
        ('policy = "weighted"\nmodels = [{model = "cheap", weight = -1}]', "routers.x.weighted"),
        ('policy = "rules"\ndefault = "cheap"\nrules = [{model = "premium"}]', "routers.x.rules"),
        (
            'policy = "rules"\ndefault = "cheap"\nrules = [{min_chars = 3, model = "a", '
            'answer = "b"}]',
            "routers.x.rules.rules.0",
        ),
        (
            'policy = "learned"\ncheap = "cheap"\npremium = "premium"\npath = "r.npz"\n'
            "target_quality = 0.9\ntarget_premium_share = 0.3",
            "routers.x.learned",
        ),
    ],
)
def test_bad_router_settings_name_the_field(tmp_path: Path, table: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[routers.x]\n{table}\n")
    assert field in str(caught.value)


def test_build_refuses_unknown_models_and_routers(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[routers.x]\npolicy = "rules"\ndefault = "cheap"\nfallbacks = ["gone"]\n'
        '[[routers.x.rules]]\nmin_chars = 1\nmodel = "premium"\n',
    )
    with pytest.raises(ConfigError) as caught:
        build_policy("x", settings)
    assert caught.value.field == "routers.x.fallbacks.0"
    assert "'gone'" in caught.value.message
    with pytest.raises(ConfigError) as missing:
        build_policy("nope", settings)
    assert missing.value.field == "routers.nope"


def test_missing_router_file_names_the_path_field(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        f'[routers.smart]\npolicy = "learned"\ncheap = "cheap"\npremium = "premium"\n'
        f'path = "{tmp_path / "absent.npz"}"\nembedder = "fake"\n',
    )
    with pytest.raises(ConfigError) as caught:
        build_policy("smart", settings)
    assert caught.value.field == "routers.smart.path"
    assert "not found" in caught.value.message
    assert str(tmp_path) in str(caught.value)


def test_router_model_names() -> None:
    assert router_name("router:support") == "support"
    assert router_name("gpt-4o") is None
    assert router_name(None) is None

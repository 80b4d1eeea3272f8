"""Money for tokens: each part of the input at its own rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether import ConfigError, PriceSettings, Settings, Usage
from tether.costs import charged, cost_usd
from tether.result import Attempt

PRICE = PriceSettings(
    input_per_million=2.0,
    output_per_million=8.0,
    cached_input_per_million=0.5,
    cache_write_per_million=2.5,
)


def test_each_part_of_the_input_has_its_rate() -> None:
    usage = Usage(
        input_tokens=1000, output_tokens=100, cached_input_tokens=600, cache_write_tokens=300
    )
    assert usage.uncached_input_tokens == 100
    assert cost_usd(usage, PRICE) == pytest.approx(
        (100 * 2.0 + 600 * 0.5 + 300 * 2.5 + 100 * 8.0) / 1e6
    )


def test_unset_cache_prices_are_the_input_price() -> None:
    price = PriceSettings(input_per_million=2.0, output_per_million=8.0)
    assert (price.cached_input_rate, price.cache_write_rate) == (2.0, 2.0)
    cached = Usage(1000, 100, cached_input_tokens=600, cache_write_tokens=300)
    assert cost_usd(cached, price) == pytest.approx(cost_usd(Usage(1000, 100), price))


def test_a_free_cache_read_is_free() -> None:
    price = PriceSettings(input_per_million=2.0, cached_input_per_million=0.0)
    assert cost_usd(Usage(1000, 0, cached_input_tokens=1000), price) == 0.0


def test_usage_adds_every_field() -> None:
    total = Usage(10, 1, 4, 2) + Usage(20, 2, 8, 0)
    assert total == Usage(30, 3, cached_input_tokens=12, cache_write_tokens=2)


def test_charged_sums_attempts() -> None:
    attempts = tuple(
        Attempt(
            raw="",
            usage=u,
            cost_usd=cost_usd(u, PRICE),
            latency_s=0.0,
            errors=(),
            finish_reason="stop",
        )
        for u in (Usage(100, 10, 50), Usage(200, 20))
    )
    usage, dollars = charged(attempts)
    assert usage == Usage(300, 30, cached_input_tokens=50)
    assert dollars == pytest.approx(cost_usd(usage, PRICE))


def test_cache_prices_are_read_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(
        "[models.gpt]\nprovider = 'openai'\n"
        "price = { input_per_million = 1.25, cached_input_per_million = 0.125, "
        "output_per_million = 10.0 }\n"
    )
    price = Settings.load(config, environ={}).models["gpt"].price
    assert price.cached_input_rate == 0.125
    assert price.cache_write_rate == 1.25


def test_a_negative_cache_price_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(
        "[models.gpt]\nprovider = 'openai'\nprice = { cached_input_per_million = -1 }\n"
    )
    with pytest.raises(ConfigError) as err:
        Settings.load(config, environ={})
    assert err.value.field == "models.gpt.price.cached_input_per_million"

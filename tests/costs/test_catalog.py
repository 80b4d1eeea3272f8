"""The price catalog: every shipped entry is sourced and dated, lookups follow dated snapshots
and aliases, settings override the catalog, and a bad file names the model and the field."""

from __future__ import annotations

import tomllib
from datetime import date
from importlib.resources import files
from pathlib import Path

import pytest

from tether import Client, FakeProvider
from tether.costs.catalog import (
    UNPRICED,
    CatalogEntry,
    default_catalog,
    parse_catalog,
    price_for,
)
from tether.costs.pricing import cost_usd
from tether.errors import ConfigError
from tether.messages import Usage
from tether.settings import ModelSettings, PriceSettings, Settings

SHIPPED = (files("tether.costs") / "prices.toml").read_text("utf-8")


def test_every_shipped_entry_is_valid_sourced_and_dated() -> None:
    raw = tomllib.loads(SHIPPED)["models"]
    catalog = default_catalog()
    assert set(catalog.entries) == set(raw)
    for name, entry in catalog.entries.items():
        assert entry.source.startswith("https://"), name
        assert date(2025, 1, 1) <= entry.as_of <= date.today(), name
        assert entry.checked.strip(), name
        # output never costs less than input for a generating model
        if entry.output_per_million:
            assert entry.output_per_million >= entry.input_per_million, name
        # a cache read is a discount, never a surcharge
        if entry.cached_input_per_million is not None:
            assert entry.cached_input_per_million <= entry.input_per_million, name


def test_vendor_verified_claims_name_the_vendor_page() -> None:
    for name, entry in default_catalog().entries.items():
        if entry.checked.startswith("verified from"):
            host = entry.source.split("/")[2]
            assert host.split(".")[-2] in entry.checked, name


def test_major_models_are_priced() -> None:
    catalog = default_catalog()
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "gpt-5", "claude-sonnet-4-5",
                  "claude-haiku-4-5", "claude-opus-4-1", "gemini-2.5-flash",
                  "deepseek-chat"):  # fmt: skip
        assert catalog.lookup(model) is not None, model


def test_local_models_are_notional_with_a_derivation() -> None:
    catalog = default_catalog()
    for model in ("qwen2.5-coder-0.5b-instruct", "gemma-3-270m", "all-MiniLM-L6-v2"):
        found = catalog.lookup(model)
        assert found is not None, model
        _, entry = found
        assert entry.notional
        assert "notional:" in entry.checked
        assert "$0.15/kWh" in entry.checked
    hosted = [e for e in catalog.entries.values() if not e.notional]
    assert all(e.vendor != "tether (local)" for e in hosted)


@pytest.mark.parametrize(
    ("upstream", "entry"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),  # an explicit alias
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gpt-4o-mini", "gpt-4o-mini"),  # exact beats the shorter family
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a snapshot priced apart keeps its price
    ],
)
def test_dated_snapshots_and_aliases_find_their_family(upstream: str, entry: str) -> None:
    found = default_catalog().lookup(upstream)
    assert found is not None
    assert found[0] == entry


@pytest.mark.parametrize(
    "upstream", ["gpt-4o-turbo-x", "gpt-4", "my-finetune", "gpt-4o-2024", "claude-sonnet"]
)
def test_lookalikes_are_not_priced(upstream: str) -> None:
    assert default_catalog().lookup(upstream) is None


def test_settings_price_overrides_the_catalog_even_at_zero() -> None:
    free = ModelSettings(provider="openai", upstream_model="gpt-4o", price=PriceSettings())
    priced = price_for("mine", free)
    assert priced.source == "settings"
    assert priced.price == PriceSettings()
    custom = PriceSettings(input_per_million=7.0, output_per_million=9.0)
    assert price_for("mine", free.model_copy(update={"price": custom})).price == custom


def test_catalog_prices_by_upstream_model_not_by_name() -> None:
    model = ModelSettings(provider="openai", upstream_model="gpt-4o-mini-2024-07-18")
    priced = price_for("cheap", model)
    assert priced.source == "catalog gpt-4o-mini"
    assert priced.price.input_per_million == 0.15
    assert priced.price.cached_input_per_million == 0.075
    # without an upstream id, the configured name is the id
    assert price_for("gpt-4.1", ModelSettings(provider="openai")).source == "catalog gpt-4.1"


def test_unknown_model_is_unpriced_at_zero() -> None:
    priced = price_for("house-model", ModelSettings(provider="openai", base_url="http://x/v1"))
    assert priced.source == UNPRICED
    assert priced.price == PriceSettings()
    assert priced.entry is None


def test_anthropic_cache_rates_reach_the_bill() -> None:
    model = ModelSettings(provider="anthropic", upstream_model="claude-sonnet-4-5-20250929")
    priced = price_for("claude", model)
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cached_input_tokens=500_000,
                  cache_write_tokens=250_000)  # fmt: skip
    # 250k plain at $3, 500k read at $0.30, 250k written at $3.75
    assert cost_usd(usage, priced.price) == pytest.approx(0.75 + 0.15 + 0.9375)


def test_settings_file_price_table_wins(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(
        '[models.gpt]\nprovider = "openai"\nupstream_model = "gpt-4o"\n'
        "[models.gpt.price]\ninput_per_million = 1.0\n"
        '[models.listed]\nprovider = "openai"\nupstream_model = "gpt-4o"\n',
        "utf-8",
    )
    settings = Settings.load(config, environ={})
    assert price_for("gpt", settings.models["gpt"]).price.input_per_million == 1.0
    assert price_for("listed", settings.models["listed"]).price.input_per_million == 2.5


def test_the_provider_pool_charges_catalog_prices(tmp_path: Path) -> None:
    settings = Settings(
        cache_dir=tmp_path,
        default_model="mini",
        models={"mini": ModelSettings(provider="fake", upstream_model="gpt-4o-mini")},
    )
    with Client(settings, providers={"mini": FakeProvider()}) as client:
        (info,) = client.models()
        assert info.price.output_per_million == 0.60


def _entry(**changes: object) -> str:
    fields = {
        "vendor": '"acme"', "input_per_million": "1.0", "output_per_million": "2.0",
        "source": '"https://acme.example/pricing"', "as_of": "2026-12-01",
        "checked": '"verified from https://acme.example/pricing"',
    }  # fmt: skip
    fields.update({k: str(v) for k, v in changes.items()})
    body = "\n".join(f"{k} = {v}" for k, v in fields.items() if v != "DROP")
    return f'[models."acme-1"]\n{body}\n'


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"input_per_million": "-1"}, "models.acme-1.input_per_million"),
        ({"output_per_million": '"cheap"'}, "models.acme-1.output_per_million"),
        ({"source": '"http://acme.example"'}, "models.acme-1.source"),
        ({"source": "DROP"}, "models.acme-1.source"),
        ({"as_of": "DROP"}, "models.acme-1.as_of"),
        ({"as_of": '"yesterday"'}, "models.acme-1.as_of"),
        ({"checked": '""'}, "models.acme-1.checked"),
        ({"price": "3"}, "models.acme-1.price"),  # a typo'd field is not ignored
    ],
)
def test_bad_entry_names_model_and_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_catalog(_entry(**changes), "prices.toml")
    assert caught.value.field == field
    assert caught.value.file == "prices.toml"
    assert str(caught.value).startswith(f"prices.toml: {field}: ")


def test_bad_file_shape_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TOML"):
        parse_catalog("[models\n", "prices.toml")
    with pytest.raises(ConfigError, match="models"):
        parse_catalog('[prices."x"]\ninput = 1\n', "prices.toml")
    doubled = _entry(aliases='["acme-one"]') + _entry().replace("acme-1", "acme-one")
    with pytest.raises(ConfigError) as caught:
        parse_catalog(doubled, "prices.toml")
    assert caught.value.field == "models.acme-1.aliases"


def test_entry_price_keeps_unset_cache_rates_unset() -> None:
    entry = CatalogEntry.model_validate(tomllib.loads(_entry())["models"]["acme-1"])
    assert entry.price.cached_input_per_million is None
    assert entry.price.cached_input_rate == 1.0  # falls back to the input price

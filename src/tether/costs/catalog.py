"""The price catalog: what each hosted model costs, from `prices.toml` in this package, and the
rule that picks the price a configured model is charged at.

Precedence (`price_for`): a `price` table in the model's settings, then the catalog entry for
its upstream model id, then zero with the source "unpriced".

An upstream id finds its entry by exact id, then by an entry's `aliases`, then with a date
suffix dropped (`gpt-4o-2024-08-06` and `claude-sonnet-4-20250514` are priced as `gpt-4o` and
`claude-sonnet-4`: vendors keep a snapshot at its family's price until they say otherwise),
then with `-latest` dropped.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tether.errors import ConfigError
from tether.settings import ModelSettings, PriceSettings

CATALOG_FILE = "prices.toml"
UNPRICED = "unpriced"
FROM_SETTINGS = "settings"

# "-2024-08-06" (OpenAI) or "-20250514" (Anthropic) at the end of an id
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|20\d{6})$")
_LATEST_SUFFIX = "-latest"


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: str = Field(min_length=1)
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(default=None, ge=0)
    cache_write_per_million: float | None = Field(default=None, ge=0)
    source: str
    as_of: date
    checked: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    notional: bool = False

    @field_validator("source")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be the https:// address of the vendor's pricing page")
        return value

    @property
    def price(self) -> PriceSettings:
        return PriceSettings(
            input_per_million=self.input_per_million,
            output_per_million=self.output_per_million,
            cached_input_per_million=self.cached_input_per_million,
            cache_write_per_million=self.cache_write_per_million,
        )


@dataclass(frozen=True)
class PricedModel:
    """The price a model is charged at and where it came from: "settings", "unpriced", or
    "catalog <id>" (with "notional" for tether's own local models)."""

    price: PriceSettings
    source: str
    entry: CatalogEntry | None = None


class Catalog:
    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self.entries = dict(entries)
        self._aliases = {alias: name for name, e in entries.items() for alias in e.aliases}

    def lookup(self, model_id: str) -> tuple[str, CatalogEntry] | None:
        """The entry's id and the entry that prices `model_id`, or None."""
        for candidate in _candidates(model_id):
            name = candidate if candidate in self.entries else self._aliases.get(candidate)
            if name is not None:
                return name, self.entries[name]
        return None


def _candidates(model_id: str) -> list[str]:
    found = [model_id]
    undated = _DATE_SUFFIX.sub("", model_id)
    if undated != model_id:
        found.append(undated)
    if model_id.endswith(_LATEST_SUFFIX):
        found.append(model_id.removesuffix(_LATEST_SUFFIX))
    return found


def parse_catalog(text: str, file: str) -> Catalog:
    """A catalog from TOML text; a bad entry is a ConfigError naming the model and field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc), file=file, field=None, fix="fix the TOML syntax") from None
    models = raw.get("models")
    unknown = sorted(set(raw) - {"models"})
    if unknown or not isinstance(models, dict):
        raise ConfigError(
            f'expected only [models."<id>"] tables, found {unknown or "no models"}',
            file=file,
            field=None,
            fix='write one [models."<upstream id>"] table per model',
        )
    entries: dict[str, CatalogEntry] = {}
    for name, body in models.items():
        try:
            entries[name] = CatalogEntry.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(
                first["msg"],
                file=file,
                field=f"models.{name}.{where}" if where else f"models.{name}",
                fix="see the field list at the top of prices.toml",
            ) from None
    _check_aliases(entries, file)
    return Catalog(entries)


def _check_aliases(entries: dict[str, CatalogEntry], file: str) -> None:
    owner: dict[str, str] = {}
    for name, entry in entries.items():
        for alias in entry.aliases:
            if alias in entries or alias in owner:
                raise ConfigError(
                    f"alias {alias!r} is already "
                    + ("an entry" if alias in entries else f"an alias of {owner[alias]!r}"),
                    file=file,
                    field=f"models.{name}.aliases",
                    fix="give each id one entry",
                )
            owner[alias] = name


@functools.cache
def default_catalog() -> Catalog:
    """The catalog shipped with tether, read and validated once."""
    text = (files("tether.costs") / CATALOG_FILE).read_text("utf-8")
    return parse_catalog(text, CATALOG_FILE)


def price_for(
    name: str, settings: ModelSettings | None, catalog: Catalog | None = None
) -> PricedModel:
    """The price model `name` is charged at (see the module docstring for the precedence)."""
    if settings is not None and "price" in settings.model_fields_set:
        return PricedModel(settings.price, FROM_SETTINGS)
    upstream = (settings.upstream_model if settings else None) or name
    found = (catalog or default_catalog()).lookup(upstream)
    if found is None:
        return PricedModel(PriceSettings(), UNPRICED)
    entry_id, entry = found
    label = f"catalog {entry_id}" + (" (notional)" if entry.notional else "")
    return PricedModel(entry.price, label, entry)

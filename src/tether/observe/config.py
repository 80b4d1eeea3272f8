"""Settings for observing requests off the response path (read by tether.settings).

```toml
[observe]
signals = true             # per-request signals, stored for drift and alerts
diversity_window = 100     # answers per prompt version that lexical diversity is measured over
signal_queue = 10000       # requests waiting for the signal worker; beyond it they are dropped
evasive_embedder = "minilm"  # embedder comparing answers with generic ones; "none": patterns only
evasive_sample = 0.02      # share of free-text answers scored (chosen by request id)
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.cache.embedders.registry import EMBEDDER_KINDS
from tether.observe.alert_rules import AlertSettings

NO_EMBEDDER = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObserveSettings(_Strict):
    signals: bool = Field(
        default=True, description="compute and store per-request signals (needs the request log)"
    )
    diversity_window: int = Field(
        default=100, ge=2, le=10_000, description="answers per prompt version in the window"
    )
    signal_queue: int = Field(
        default=10_000, ge=1, description="requests queued for the signal worker at most"
    )
    evasive_embedder: str = Field(
        default="minilm",
        description='embedder for the evasive score\'s similarity part; "none": patterns only',
    )

    evasive_sample: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="share of free-text answers given an evasive score (its embedder costs "
        "milliseconds per answer; a fixed sample keeps the signal's distribution comparable)",
    )
    metrics: bool = Field(default=True, description="Prometheus metrics at /metrics (admin token)")
    traces: Literal["none", "console", "otlp", "memory"] = Field(
        default="none", description="where request spans and GenAI metrics go"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector base URL; default: OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    trace_sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of requests traced"
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings, description="drift thresholds, alert rules and sinks"
    )

    @field_validator("evasive_embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        if value != NO_EMBEDDER and value not in EMBEDDER_KINDS:
            known = ", ".join([*sorted(EMBEDDER_KINDS), NO_EMBEDDER])
            raise ValueError(f"unknown embedder {value!r} (known: {known})")
        return value

    @model_validator(mode="after")
    def _inputs_need_an_embedder(self) -> ObserveSettings:
        watching = [rule.name for rule in self.alerts.rules if rule.watches_inputs]
        if watching and self.evasive_embedder == NO_EMBEDDER:
            raise ValueError(
                f"alert rule {watching[0]!r} compares the inputs' embeddings, but "
                f'evasive_embedder = "{NO_EMBEDDER}": set evasive_embedder to an embedder '
                f'(e.g. "minilm") or remove the rule'
            )
        return self

"""Settings for drift detection and alerts: thresholds, rules and where alerts go.

```toml
[observe.alerts]
check_interval_s = 600            # how often the gateway runs the time-window drift rules

[observe.alerts.drift]            # what `tether drift` and drift rules call drift
p_value = 0.001
psi = 0.2
min_sample = 30

[[observe.alerts.sinks]]
kind = "webhook"
name = "ops"
url = "https://hooks.example.com/tether"
token_env = "TETHER_ALERT_TOKEN"  # sent as a bearer token; the variable's name, never the value

[[observe.alerts.rules]]
name = "sentiment-drift"
signal = "drift:enum:sentiment"   # a signal, or drift:<signal> to compare two windows
prompt = "triage"
statistic = "chi2_p"
threshold = 0.001                 # p-values fire below, other statistics above
window_requests = 200             # or window_s = 86400 (then baseline_s)

[observe.alerts.calibration]      # ECE of the confidence field against feedback and canaries
max_ece = 0.15
min_sample = 50

[observe.alerts.canary]           # the `canary` rule: pass rate of the latest canary runs
interval_s = 900
prompts = ["triage"]              # registered prompts whose test cases are canaries
min_pass_rate = 1.0               # 1.0: any failure fires

[[observe.alerts.canaries]]       # reference requests with their expected answers
prompt = "triage"
inputs = { ticket = "I was charged twice" }
expect = [{ type = "equals", field = "category", value = "billing" }]
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.evals.assertions import Assertion

DRIFT_PREFIX = "drift:"
Direction = Literal["above", "below"]
LevelStatistic = Literal["mean", "rate", "p95"]
DriftStatistic = Literal["psi", "ks_p", "chi2_p", "embedding_p"]
LEVEL_STATISTICS: tuple[str, ...] = ("mean", "rate", "p95")
DRIFT_STATISTICS: tuple[str, ...] = ("psi", "ks_p", "chi2_p", "embedding_p")
P_VALUES: tuple[str, ...] = ("ks_p", "chi2_p", "embedding_p")
# The logged inputs compared by their mean embedding: not a stored signal, read from the
# request log (drift.INPUT_SIGNAL names the same result).
INPUT_EMBEDDING = "input_embedding"
INPUT_DRIFT = DRIFT_PREFIX + INPUT_EMBEDDING
INPUT_STATISTIC = "embedding_p"
# The permutation test runs about 5 / threshold splits: below this it would take minutes.
MIN_EMBEDDING_P = 1e-5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftThresholds(_Strict):
    """When a comparison of two windows counts as drift.

    Each test's false-alarm rate is its p-value threshold: with the default 0.001 and one test
    per disjoint window, 50 unchanged windows raise a false alarm with probability
    1 - 0.999^50, about 5%."""

    p_value: float = Field(default=0.001, gt=0, lt=1, description="chi-square, KS, embeddings")
    psi: float = Field(default=0.2, gt=0, description="population stability index")
    psi_floor: float = Field(default=1e-4, gt=0, lt=0.1, description="share given empty bins")
    ks: float = Field(default=0.1, gt=0, le=1, description="KS statistic (largest CDF gap)")
    mean_delta: dict[str, float] = Field(
        default_factory=lambda: {"evasive": 0.1, "distinct_2": 0.1, "type_token_ratio": 0.1},
        description="change of the mean that counts as drift, per signal",
    )
    default_mean_delta: float = Field(default=0.1, gt=0)
    min_sample: int = Field(default=30, ge=2, description="fewest samples per window to test")
    permutations: int = Field(default=500, ge=10, le=100_000, description="embedding test")


class AlertRule(_Strict):
    """One condition on one signal. A plain signal is checked by `mean`, `rate` (share of
    nonzero values, or of `label` when set) or `p95` over the window; `drift:<signal>`
    compares the window with the baseline window before it by `psi`, `ks_p` or `chi2_p`;
    `drift:input_embedding` compares the logged inputs of both windows by `embedding_p` (a
    permutation test on their mean embedding, over seconds only)."""

    name: str = Field(min_length=1, max_length=100)
    signal: str = Field(min_length=1, max_length=200)
    prompt: str | None = Field(default=None, description="one prompt; None: each prompt alone")
    label: str | None = Field(default=None, description="with rate: the label counted")
    statistic: LevelStatistic | DriftStatistic
    threshold: float
    direction: Direction | None = Field(
        default=None, description="default: below for p-values, above for the rest"
    )
    window_requests: int | None = Field(default=None, ge=2, le=100_000)
    window_s: float | None = Field(default=None, gt=0)
    baseline_requests: int | None = Field(default=None, ge=2, le=1_000_000)
    baseline_s: float | None = Field(default=None, gt=0)
    min_sample: int = Field(default=30, ge=1)
    cooldown_s: float = Field(default=3600.0, ge=0, description="quiet time after firing")
    sinks: list[str] | None = Field(default=None, description="sink names; None: every sink")

    @property
    def is_drift(self) -> bool:
        return self.signal.startswith(DRIFT_PREFIX)

    @property
    def watched(self) -> str:
        """The signal the rule reads (without `drift:`)."""
        return self.signal.removeprefix(DRIFT_PREFIX)

    @property
    def watches_inputs(self) -> bool:
        """Input drift: the logged inputs' embeddings, not a stored signal."""
        return self.signal == INPUT_DRIFT

    @property
    def fires_below(self) -> bool:
        if self.direction is not None:
            return self.direction == "below"
        return self.statistic in P_VALUES

    @property
    def baseline_size(self) -> int:
        """The baseline window in requests (four recent windows unless set)."""
        assert self.window_requests is not None
        return self.baseline_requests or 4 * self.window_requests

    @property
    def baseline_seconds(self) -> float:
        assert self.window_s is not None
        return self.baseline_s or 7 * self.window_s

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        where = f"rule {self.name!r}"
        if (self.window_requests is None) == (self.window_s is None):
            raise ValueError(f"{where}: set exactly one of window_requests or window_s")
        if self.watches_inputs or self.statistic == INPUT_STATISTIC:
            self._input_drift(where)  # first: the general messages below would mislead
        if self.is_drift and self.statistic not in DRIFT_STATISTICS:
            others = " or ".join(s for s in DRIFT_STATISTICS if s != INPUT_STATISTIC)
            raise ValueError(
                f"{where}: a drift: signal takes statistic {others} "
                f"({INPUT_STATISTIC} with '{INPUT_DRIFT}')"
            )
        if not self.is_drift and self.statistic not in LEVEL_STATISTICS:
            raise ValueError(
                f"{where}: statistic {self.statistic} needs signal = 'drift:{self.signal}'"
            )
        if not self.watched:
            raise ValueError(f"{where}: name the signal after drift:")
        if self.label is not None and self.statistic != "rate":
            raise ValueError(f"{where}: label is only read with statistic = 'rate'")
        return self

    def _input_drift(self, where: str) -> None:
        if not self.watches_inputs:
            others = " or ".join(s for s in DRIFT_STATISTICS if s != INPUT_STATISTIC)
            raise ValueError(
                f"{where}: statistic {INPUT_STATISTIC} compares logged inputs: set signal = "
                f"'{INPUT_DRIFT}' (a drift: signal takes {others})"
            )
        if self.statistic != INPUT_STATISTIC:
            raise ValueError(
                f"{where}: signal '{INPUT_DRIFT}' is tested by statistic = '{INPUT_STATISTIC}' "
                "(a p-value: threshold = 0.001 fires below it)"
            )
        # The inputs are read from the request log on the drift schedule; the signal worker,
        # which counts requests, never sees them.
        if self.window_requests is not None or self.baseline_requests is not None:
            raise ValueError(
                f"{where}: '{INPUT_DRIFT}' is checked on the schedule over time windows: set "
                "window_s (and baseline_s) instead of window_requests and baseline_requests"
            )
        if not MIN_EMBEDDING_P <= self.threshold < 1:
            raise ValueError(
                f"{where}: threshold is the p-value below which the rule fires: set it between "
                f"{MIN_EMBEDDING_P:g} and 1 (e.g. 0.001)"
            )


class LogSink(_Strict):
    kind: Literal["log"]
    name: str = Field(default="log", min_length=1, max_length=100)
    level: Literal["info", "warning", "error"] = "warning"


class WebhookSink(_Strict):
    """POST the alert as JSON. The URL comes from the settings file only."""

    kind: Literal["webhook"]
    name: str = Field(min_length=1, max_length=100)
    url: str
    token_env: str | None = Field(
        default=None, description="environment variable holding a bearer token"
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5, description="tries after the first")
    backoff_s: float = Field(default=0.5, ge=0, le=30, description="doubles after each try")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a webhook url starts with http:// or https://")
        return url


def _default_sink() -> LogSink | WebhookSink:
    return LogSink(kind="log")


SinkSettings = Annotated[LogSink | WebhookSink, Field(discriminator="kind")]


CANARY_RULE = "canary"
CALIBRATION_RULE = "calibration"


class CalibrationAlert(_Strict):
    """The `calibration` rule: a prompt version's expected calibration error (ECE) of its
    confidence field, over the requests of the last `window_s` whose truth is known."""

    max_ece: float = Field(default=0.15, gt=0, le=1, description="fires above it")
    min_sample: int = Field(default=50, ge=1, description="fewest (confidence, truth) pairs")
    bins: int = Field(default=10, ge=1, le=100, description="equal-width confidence bins")
    window_s: float = Field(default=7 * 86400.0, gt=0, description="requests this recent")
    cooldown_s: float = Field(default=86400.0, ge=0, description="quiet time after firing")
    sinks: list[str] | None = Field(default=None, description="sink names; None: every sink")

    def rule(self) -> AlertRule:
        """The rule as the alert engine delivers it (name, threshold, sinks)."""
        return AlertRule(name=CALIBRATION_RULE, signal="ece", statistic="mean",
                         threshold=self.max_ece, window_s=self.window_s,
                         min_sample=self.min_sample, cooldown_s=self.cooldown_s,
                         sinks=self.sinks)  # fmt: skip


class CanarySchedule(_Strict):
    """How canaries run and when they alert: the `canary` rule fires when the pass rate of a
    prompt version's latest `window` canary runs falls below `min_pass_rate`."""

    interval_s: float = Field(default=900.0, ge=10, description="the gateway runs them this often")
    prompts: list[str] = Field(
        default_factory=list, description="registered prompts whose test cases are canaries"
    )
    label: str = Field(default="production", description="the version run (else the latest)")
    model: str | None = Field(default=None, description="the model (default: the prompt's)")
    window: int = Field(default=20, ge=1, le=10_000, description="latest runs per version")
    min_pass_rate: float = Field(default=1.0, gt=0, le=1, description="1.0: any failure fires")
    cooldown_s: float = Field(default=3600.0, ge=0, description="quiet time after firing")
    sinks: list[str] | None = Field(default=None, description="sink names; None: every sink")

    def rule(self) -> AlertRule:
        """The rule as the alert engine delivers it (name, threshold, sinks)."""
        return AlertRule(name=CANARY_RULE, signal="canary", statistic="mean",
                         threshold=self.min_pass_rate, direction="below",
                         window_requests=max(self.window, 2), min_sample=1,
                         cooldown_s=self.cooldown_s, sinks=self.sinks)  # fmt: skip


class Canary(_Strict):
    """A reference request with its expected answer, run through the normal pipeline;
    `expect` takes the assertions of a spec file's test case (`assert:`)."""

    prompt: str = Field(min_length=1, description="a registered prompt")
    name: str | None = Field(default=None, min_length=1, description="default: prompt #n")
    inputs: dict[str, Any] = Field(default_factory=dict)
    expect: list[Assertion] = Field(min_length=1)
    version: str | None = Field(default=None, description="default: the schedule's label")


class AlertSettings(_Strict):
    rules: list[AlertRule] = Field(default_factory=list)
    sinks: list[SinkSettings] = Field(default_factory=lambda: [_default_sink()])
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    check_interval_s: float = Field(default=600.0, ge=1, description="time-window drift rules")
    calibration: CalibrationAlert | None = Field(
        default=None, description="the calibration rule; None: not checked"
    )
    canary: CanarySchedule = Field(default_factory=CanarySchedule)
    canaries: list[Canary] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> AlertSettings:
        for what, names in (("rule", [r.name for r in self.rules]),
                            ("sink", [s.name for s in self.sinks])):  # fmt: skip
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{what} names must differ: {', '.join(repeated)} repeated")
        known = {s.name for s in self.sinks}
        others = [self.canary.rule(), *([self.calibration.rule()] if self.calibration else [])]
        for rule in [*self.rules, *others]:
            unknown = [s for s in rule.sinks or [] if s not in known]
            if unknown:
                raise ValueError(
                    f"rule {rule.name!r} names unknown sink(s) {unknown}; "
                    f"add them under [[observe.alerts.sinks]] (known: {sorted(known)})"
                )
        reserved = sorted({CANARY_RULE, CALIBRATION_RULE} & {r.name for r in self.rules})
        if reserved:
            raise ValueError(
                f"rule name(s) {reserved} are the canary and calibration rules: rename the rule "
                "under [[observe.alerts.rules]], or set them under [observe.alerts.canary] "
                "and [observe.alerts.calibration]"
            )
        return self

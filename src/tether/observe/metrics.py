"""Prometheus metrics of finished requests, served by the gateway at /metrics.

`Metrics.observe(ctx)` runs once per request in the record stage; `render()` is the text a
scrape reads. Every instance owns its registry (no process-global one), so several runtimes in
one process keep separate counts.

Label values stay bounded, whatever callers send:
    endpoint  set by the entry point ("chat.completions", "generate", ...)
    prompt    a prompt the registry (or a spec file) resolved, else ""; version likewise
    model     a configured model or "router:NAME"; anything else is "other"
              (requests: the model that answered, else the one asked for; tokens and cost:
              the model of each attempt, fallbacks included)
    key       the virtual key's id (never its secret), else ""
    status    the HTTP status the request ended with; error_type its exception's class

`worker_exposition` adds the background writers' counters (signal worker, request log), read
from their `stats()` at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.costs.accounting import charged
from tether.errors import ContractViolation
from tether.pipeline.context import Context
from tether.result import Attempt
from tether.routing.config import ROUTER_PREFIX, router_name

if TYPE_CHECKING:
    from tether.settings import Settings

# The classic text format, read by every Prometheus version (the names here need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"  # a model name no settings entry defines (a typo, a probe)
# Seconds: gateway-only answers (cache hits, refusals) in the first buckets, model calls after.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

M = TypeVar("M", Counter, Histogram)


def known_models(settings: Settings) -> frozenset[str]:
    """The model names a label may carry: configured models and routers."""
    return frozenset((*settings.models, *(ROUTER_PREFIX + r for r in settings.routers)))


class _Family(Generic[M]):
    """A labelled metric whose children are cached by their label values: a repeat costs one
    dict lookup rather than prometheus_client's validation on every `labels()` call."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    """Request counters, durations, tokens, cost, conformity, cache and route decisions."""

    def __init__(
        self,
        models: Collection[str] | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        # None: every model name is a label (a library caller's own names); the gateway
        # passes the configured ones (`for_settings`), since its callers pick the names.
        self._models = frozenset(models) if models is not None else None
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        request = ("endpoint", "prompt", "version", "model", "key")

        def counter(name: str, doc: str, labels: Sequence[str]) -> _Family[Counter]:
            return _Family(Counter(name, doc, labels, registry=reg))

        self.requests = counter("tether_requests", "Finished requests.", (*request, "status"))
        self.duration = _Family(
            Histogram(
                "tether_request_duration_seconds",
                "Time from a request's arrival to its end, in seconds.",
                ("endpoint", "prompt", "version", "model"),
                buckets=DURATION_BUCKETS,
                registry=reg,
            )
        )
        self.errors = counter(
            "tether_errors", "Requests that failed, by exception class.", (*request, "error_type")
        )
        self.tokens = counter(
            "tether_tokens",
            "Tokens billed by providers (every attempt), by direction.",
            (*request, "direction"),
        )
        self.cost = counter(
            "tether_cost_usd",
            "What provider calls cost, in US dollars (every attempt).",
            ("prompt", "version", "model", "key"),
        )
        self.conformity = counter(
            "tether_schema_conformity",
            "Requests with an output contract, by whether the answer met it.",
            ("prompt", "version", "model", "valid"),
        )
        self.repairs = counter(
            "tether_repairs",
            "Attempts after a request's first: repairs, retries and fallbacks.",
            ("prompt", "version", "model"),
        )
        self.cache_decisions = counter(
            "tether_cache_decisions",
            "What the response cache did: miss, exact, semantic, bypass or skip.",
            ("prompt", "kind"),
        )
        self.cache_saved = counter(
            "tether_cache_saved_usd",
            "What cache hits saved: the cost of the calls they replaced, in US dollars.",
            ("prompt",),
        )
        self.route_decisions = counter(
            "tether_route_decisions",
            "Routers' choices: the model picked, or `rule` for an answer without one.",
            ("router", "model"),
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> Metrics:
        return cls(known_models(settings))

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def _model(self, name: str | None) -> str:
        if not name:
            return ""
        if self._models is None or name in self._models:
            return name
        return OTHER

    def observe(self, ctx: Context) -> None:
        """Count one finished request (called once, as it is recorded)."""
        ask = ctx.ask
        found = ctx.found
        if found is not None:
            prompt, version = found.name, found.version
        elif ctx.compiled is not None:
            prompt, version = ctx.compiled.spec.name, ""
        else:  # a name that resolved to nothing is the caller's text: not a label
            prompt, version = "", ""
        key = ask.key.id if ask.key is not None else ""
        model = self._model(ctx.answered_by or ctx.model or ask.model)
        endpoint = ask.endpoint

        self.requests(endpoint, prompt, version, model, key, str(ctx.status)).inc()
        self.duration(endpoint, prompt, version, model).observe(time.perf_counter() - ctx.started)
        error = ctx.error
        if error is not None:
            name = type(error).__name__
            self.errors(endpoint, prompt, version, model, key, name).inc()

        attempts = ctx.attempts
        if attempts:
            self._attempts(ctx, endpoint, prompt, version, key)
            if len(attempts) > 1:
                self.repairs(prompt, version, model).inc(len(attempts) - 1)
        if ctx.contract_name is not None:
            valid = _valid(ctx)
            if valid is not None:
                self.conformity(prompt, version, model, "true" if valid else "false").inc()
        cache = ctx.cache
        if cache is not None:
            self.cache_decisions(prompt, cache.kind).inc()
            if cache.hit and cache.saved_usd:
                self.cache_saved(prompt).inc(cache.saved_usd)
        route = ctx.route
        if route is not None:
            router = router_name(ctx.model) or ""
            picked = "rule" if route.answer is not None else self._model(route.model)
            self.route_decisions(router, picked).inc()

    def _attempts(self, ctx: Context, endpoint: str, prompt: str, version: str, key: str) -> None:
        attempts = ctx.attempts
        first = attempts[0].model
        if all(a.model == first for a in attempts):  # the common case: one model, summed once
            groups = [(first, tuple(attempts))]
        else:
            groups = [(m, tuple(a for a in attempts if a.model == m)) for m in _models(attempts)]
        for name, group in groups:
            usage, cost = charged(group)
            model = self._model(name)
            if usage.input_tokens:
                self.tokens(endpoint, prompt, version, model, key, "input").inc(usage.input_tokens)
            if usage.output_tokens:
                self.tokens(endpoint, prompt, version, model, key, "output").inc(
                    usage.output_tokens
                )
            if cost:
                self.cost(prompt, version, model, key).inc(cost)


def _models(attempts: Sequence[Attempt]) -> list[str]:
    return list(dict.fromkeys(a.model for a in attempts))


def _valid(ctx: Context) -> bool | None:
    """As the request log judges it: invalid only when an output failed its contract."""
    if isinstance(ctx.error, ContractViolation):
        return False
    if ctx.error is None and ctx.results:
        return True
    return None


# -- the background writers' counters ----------------------------------------------------------


class HasStats(Protocol):
    def stats(self) -> Mapping[str, int]: ...


Kind = Literal["gauge", "counter"]
# (stats() key, metric name, kind, help): counters get `_total` in the exposition.
SIGNAL_WORKER_METRICS: tuple[tuple[str, str, Kind, str], ...] = (
    ("pending", "tether_signal_queue_pending", "gauge",
     "Finished requests waiting for the signal worker."),
    ("written", "tether_signals_written", "counter", "Signal rows stored."),
    ("dropped", "tether_signals_dropped", "counter",
     "Requests given no signals because the signal queue was full."),
    ("lost", "tether_signals_lost", "counter",
     "Signal rows dropped after their write failed every retry."),
)  # fmt: skip
REQUEST_LOG_METRICS: tuple[tuple[str, str, Kind, str], ...] = (
    ("pending", "tether_request_log_pending", "gauge", "Request rows waiting for the writer."),
    ("spooled", "tether_request_log_spooled", "gauge",
     "Request rows in the on-disk spool, waiting for the database."),
    ("quarantined", "tether_request_log_quarantined", "counter",
     "Request rows the database refused for good (moved to the dead-letter file)."),
    ("dropped", "tether_request_log_dropped", "counter",
     "Request rows lost because the spool was full or could not be written."),
)  # fmt: skip


class WorkerCollector(Collector):
    """The signal worker's and the request log's counters, read when scraped (None: that
    writer is not running, and its metrics are left out)."""

    def __init__(self, signal_worker: HasStats | None, request_log: HasStats | None) -> None:
        self._sources = ((signal_worker, SIGNAL_WORKER_METRICS),
                         (request_log, REQUEST_LOG_METRICS))  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        for source, specs in self._sources:
            if source is None:
                continue
            stats = source.stats()
            for key, name, kind, doc in specs:
                value = float(stats.get(key, 0))
                if kind == "gauge":
                    yield GaugeMetricFamily(name, doc, value=value)
                else:
                    yield CounterMetricFamily(name, doc, value=value)


def worker_exposition(signal_worker: HasStats | None, request_log: HasStats | None) -> bytes:
    """The writers' counters in the Prometheus text format, to append to `Metrics.render()`
    (a registry of their own: the runtime's metrics need not know its writers)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(signal_worker, request_log))
    return generate_latest(registry)

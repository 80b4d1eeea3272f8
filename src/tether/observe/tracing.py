"""OpenTelemetry spans and metrics of finished requests, in the GenAI semantic conventions.

One span per request, named "{operation} {model}" ("chat bench", "embeddings local-embed"),
from the request's arrival to its end, with the `gen_ai.*` attributes of an inference span
(operation, provider, request and response model, token usage, sampling settings, finish
reasons, `error.type`), the prompt's name and version, and tether's own (`tether.*`: request
id, cache decision, route). Two histograms, as the conventions define them:
`gen_ai.client.token.usage` ({token}, by `gen_ai.token.type`) and
`gen_ai.client.operation.duration` (s).

The providers are the caller's (an application that set up OpenTelemetry passes its own, or
leaves them out for the global ones), or built here for an exporter: `console`, `otlp`
(OTLP/HTTP to a collector; the standard OTEL_EXPORTER_OTLP_* variables apply), `memory`
(tests), `none` (the process's global providers: silent unless the application set them up).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from tether.costs.accounting import charged
from tether.errors import TetherError
from tether.messages import Usage
from tether.observe.bursts import Bursts, let_others_run, lowest_priority
from tether.pipeline.context import Context

log = logging.getLogger("tether.observe")

Exporter = Literal["none", "console", "otlp", "memory"]
EXPORTERS: tuple[Exporter, ...] = ("none", "console", "otlp", "memory")
SCOPE = "tether"
OTHER = "other"  # a requested model no settings entry defines: not a metric attribute value
# Sampling settings the conventions name, as `gen_ai.request.<name>`.
REQUEST_PARAMS = ("max_tokens", "temperature", "top_p", "seed", "presence_penalty",
                  "frequency_penalty")  # fmt: skip
# The conventions' advised bucket boundaries for the two histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)  # fmt: skip
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)  # fmt: skip


# A finished request waiting for its span: its context, end (ns since the epoch), duration
# (s) and the OpenTelemetry context it ran in.
_Finished = tuple[Context, int, float, otel_context.Context]


def _version() -> str:
    try:
        return importlib.metadata.version("tether")
    except importlib.metadata.PackageNotFoundError:
        return "0"


@dataclass
class Telemetry:
    """Providers built for an exporter, and what must be flushed when the runtime closes."""

    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None
    spans: InMemorySpanExporter | None = None  # the `memory` exporter's spans
    reader: InMemoryMetricReader | None = None  # the `memory` exporter's metrics
    _owned: list[SdkTracerProvider | SdkMeterProvider] = field(default_factory=list)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters' threads."""
        for provider in self._owned:
            provider.shutdown()
        self._owned.clear()


def build_telemetry(
    exporter: Exporter,
    *,
    endpoint: str | None = None,
    service_name: str = "tether",
    metric_interval_s: float = 60.0,
    sample_ratio: float = 1.0,
) -> Telemetry:
    """Tracer and meter providers that send to `exporter`. `endpoint`: the OTLP collector's
    base URL (e.g. http://127.0.0.1:4318); None reads OTEL_EXPORTER_OTLP_ENDPOINT.
    `sample_ratio`: the share of requests traced (a span costs its encoding on export; the
    histograms see every request), unless the caller's own span was sampled."""
    if not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"sample_ratio must be between 0 and 1, not {sample_ratio}")
    if exporter == "none":
        return Telemetry()
    resource = Resource.create({"service.name": service_name, "service.version": _version()})
    span_exporter: SpanExporter
    reader: MetricReader
    memory_spans = memory_reader = None
    if exporter == "memory":  # in order and at once: what tests read back
        span_exporter = memory_spans = InMemorySpanExporter()
        reader = memory_reader = InMemoryMetricReader()
    elif exporter == "console":
        span_exporter = ConsoleSpanExporter(service_name=service_name)
        reader = _periodic(ConsoleMetricExporter(), metric_interval_s)
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = endpoint.rstrip("/") if endpoint else None
        span_exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces" if base else None)
        metric_exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics" if base else None)
        reader = _periodic(metric_exporter, metric_interval_s)
    else:
        raise ValueError(f"unknown exporter {exporter!r} (known: {', '.join(EXPORTERS)})")
    sampler = ParentBased(TraceIdRatioBased(sample_ratio)) if sample_ratio < 1.0 else None
    tracer_provider = SdkTracerProvider(resource=resource, sampler=sampler)
    # Exporting happens on the processor's thread, never on the request path (memory aside).
    processor = (
        SimpleSpanProcessor(span_exporter)
        if exporter == "memory"
        else BatchSpanProcessor(LowPriorityExporter(span_exporter), max_export_batch_size=128)
    )
    tracer_provider.add_span_processor(processor)
    meter_provider = SdkMeterProvider(resource=resource, metric_readers=[reader])
    return Telemetry(
        tracer_provider,
        meter_provider,
        memory_spans,
        memory_reader,
        [tracer_provider, meter_provider],
    )


class LowPriorityExporter(SpanExporter):
    """A span exporter that lowers the priority of the thread it exports on (the batch
    processor's): encoding spans is CPU work the request path should not wait behind."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._lowered: set[int] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        thread = threading.get_ident()
        if thread not in self._lowered:
            self._lowered.add(thread)
            lowest_priority()
        return self._inner.export(spans)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _periodic(exporter: MetricExporter, interval_s: float) -> PeriodicExportingMetricReader:
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval_s * 1000)


class Tracing:
    """A span and the GenAI histograms for every finished request."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        models: Collection[str] | None = None,
        telemetry: Telemetry | None = None,
        background: bool = False,
    ) -> None:
        version = _version()
        self._tracer = trace.get_tracer(SCOPE, version, tracer_provider)
        meter = metrics.get_meter(SCOPE, version, meter_provider)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # as in tether.observe.metrics: a caller's model name is a metric attribute only when
        # configured (None: any); span attributes carry it as sent
        self._models = frozenset(models) if models is not None else None
        self.telemetry = telemetry
        # Exporting providers: spans are built in bursts on a low-priority thread (a span
        # costs tens of microseconds of Python the request path need not share its core with).
        self._bursts: Bursts[_Finished] | None = None
        if background:
            self._bursts = Bursts(self._emit_all, name="tether-traces")
            self._bursts.start()

    @classmethod
    def build(
        cls,
        exporter: Exporter,
        *,
        models: Collection[str] | None = None,
        endpoint: str | None = None,
        service_name: str = "tether",
        sample_ratio: float = 1.0,
    ) -> Tracing:
        telemetry = build_telemetry(
            exporter, endpoint=endpoint, service_name=service_name, sample_ratio=sample_ratio
        )
        return cls(
            telemetry.tracer_provider,
            telemetry.meter_provider,
            models=models,
            telemetry=telemetry,
            background=exporter in ("otlp", "console"),
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the requests observed so far have their spans (background only)."""
        return self._bursts.flush(timeout) if self._bursts is not None else True

    def close(self) -> None:
        if self._bursts is not None:
            self._bursts.close()
        if self.telemetry is not None:
            self.telemetry.shutdown()

    def observe(self, ctx: Context) -> None:
        """The span and measurements of one finished request: in the background thread's next
        burst, or on an event loop in its next turn, once the response has gone out. Building
        a span costs tens of microseconds that the caller need not wait for (its times are
        taken now)."""
        now_ns = time.time_ns()
        elapsed_s = time.perf_counter() - ctx.started
        parent = otel_context.get_current()  # the caller's span, if it runs inside one
        if self._bursts is not None:
            self._bursts.submit((ctx, now_ns, elapsed_s, parent))
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._emit(ctx, now_ns, elapsed_s, parent)
            return
        loop.call_soon(self._emit, ctx, now_ns, elapsed_s, parent)

    def _emit_all(self, batch: list[_Finished]) -> None:
        for finished in batch:
            try:
                self._emit(*finished)
            except Exception:
                log.exception("tracing: no span for %s", finished[0].request_id)
            let_others_run()

    def _emit(
        self, ctx: Context, now_ns: int, elapsed_s: float, parent: otel_context.Context
    ) -> None:
        ask = ctx.ask
        operation = "embeddings" if ask.operation == "embed" else "chat"
        requested = ctx.model or ask.model
        plan = ctx.plan
        results = ctx.results
        provider = plan.provider.kind if plan is not None else None
        if provider is None and results:
            provider = results[0].provider  # "cache" or "rule": no provider was called
        response_model = results[0].model if results else None
        error = ctx.error
        error_type = type(error).__name__ if error is not None else None
        usage, cost = charged(tuple(ctx.attempts)) if ctx.attempts else (None, 0.0)

        common: dict[str, Any] = {"gen_ai.operation.name": operation}
        if provider:
            common["gen_ai.provider.name"] = provider
        if requested:
            common["gen_ai.request.model"] = requested
        if response_model:
            common["gen_ai.response.model"] = response_model

        span = self._tracer.start_span(
            f"{operation} {requested}" if requested else operation,
            kind=SpanKind.CLIENT,
            start_time=now_ns - int(elapsed_s * 1e9),
            context=parent,
        )
        if span.is_recording():  # a request the sampler left out costs no attributes
            attributes = _span_attributes(ctx, common, usage, cost)
            if error is not None:
                attributes["error.type"] = error_type
                span.set_status(Status(StatusCode.ERROR, _describe(error)))
            span.set_attributes(attributes)
        span.end(end_time=now_ns)

        if requested and self._models is not None and requested not in self._models:
            common["gen_ai.request.model"] = OTHER
        if usage is not None:
            self._tokens.record(usage.input_tokens, {**common, "gen_ai.token.type": "input"})
            self._tokens.record(usage.output_tokens, {**common, "gen_ai.token.type": "output"})
        if error_type is not None:
            common["error.type"] = error_type
        self._duration.record(elapsed_s, common)


def _span_attributes(
    ctx: Context, common: dict[str, Any], usage: Usage | None, cost: float
) -> dict[str, Any]:
    ask = ctx.ask
    attributes = dict(common)
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cached_input_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
        attributes["tether.cost_usd"] = cost
    params = ctx.params
    for name in REQUEST_PARAMS:
        value = params.get(name)
        if value is not None:
            attributes[f"gen_ai.request.{name}"] = value
    if ask.n != 1:
        attributes["gen_ai.request.choice.count"] = ask.n
    if ask.stream:
        attributes["gen_ai.request.stream"] = True
    reasons = _finish_reasons(ctx)
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    found = ctx.found
    prompt = ctx.prompt_name if found is not None or ctx.compiled is not None else None
    if prompt:
        attributes["gen_ai.prompt.name"] = prompt
    if found is not None:
        attributes["gen_ai.prompt.version"] = found.version
    # Each attribute costs encoding time on export: only what finds or explains a request.
    attributes["tether.request_id"] = ctx.request_id
    if ask.key is not None:
        attributes["tether.key.id"] = ask.key.id
    if ctx.cache is not None:
        attributes["tether.cache.decision"] = ctx.cache.kind
    if ctx.route is not None:
        attributes["tether.route.reason"] = ctx.route.reason
    return attributes


def _finish_reasons(ctx: Context) -> tuple[str, ...]:
    """Each choice's last attempt's reason; a failed request's last attempt's."""
    if ctx.results:
        return tuple(r.attempts[-1].finish_reason for r in ctx.results if r.attempts)
    if ctx.attempts:
        return (ctx.attempts[-1].finish_reason,)
    return ()


def _describe(error: BaseException) -> str:
    """What a span's status says: a tether error's message (written to be shown, never
    holding a secret), else only the exception's class."""
    if isinstance(error, TetherError):
        return error.message
    return type(error).__name__

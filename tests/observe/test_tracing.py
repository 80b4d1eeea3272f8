"""OpenTelemetry spans and GenAI metrics of finished requests, read back from the SDK's
in-memory exporter and reader."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.asks import api_key, chat, observed
from tether import Client, FakeProvider, Settings
from tether.cache.config import CacheSettings
from tether.observe.metrics import known_models
from tether.observe.tracing import LowPriorityExporter, Tracing
from tether.pipeline.context import Ask, Context
from tether.prompts.loader import parse_spec

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SPEC = """
name: greet
version: 2.0.1
model: fake
params: {max_tokens: 40, temperature: 0.3}
messages:
  - {role: user, content: "Say hello to {{ who }}"}
"""


@dataclass
class Otel:
    tracing: Tracing
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: list[HistogramDataPoint] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [p for p in metric.data.data_points
                                  if isinstance(p, HistogramDataPoint)]  # fmt: skip
        return found


@pytest.fixture
def otel(settings: Settings) -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracing = Tracing(tracer_provider, meter_provider, models=known_models(settings))
    yield Otel(tracing, spans, reader, tracer_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_a_chat_request_is_one_span_in_the_genai_conventions(
    settings: Settings, otel: Otel
) -> None:
    before = time.time_ns()
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "two words")}) as c:
        ctx = observed(
            c, otel.tracing, chat("one two three", key=api_key("key_a"), params={"seed": 7})
        )
    (span,) = otel.finished()
    assert span.name == "chat fake"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "fake"
    assert attributes["gen_ai.request.model"] == "fake"
    assert attributes["gen_ai.response.model"] == "fake-model"
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert attributes["gen_ai.usage.output_tokens"] == 2
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["tether.request_id"] == ctx.request_id
    assert attributes["tether.key.id"] == "key_a"
    assert "error.type" not in attributes
    assert "gen_ai.prompt.name" not in attributes
    # the span covers the request from its arrival, not just the moment it was recorded
    assert span.start_time is not None
    assert span.end_time is not None
    assert before - 5_000_000 <= span.start_time < span.end_time <= time.time_ns()


def test_prompt_name_version_and_sampling_settings(settings: Settings, otel: Otel) -> None:
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "hello")}) as c:
        loaded = parse_spec(SPEC, source_name="greet.yaml")
        c.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        observed(c, otel.tracing, Ask("prompts.run", prompt="greet", inputs={"who": "Ada"}))
    (span,) = otel.finished()
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.prompt.name"] == "greet"
    assert attributes["gen_ai.prompt.version"] == "2.0.1"
    assert attributes["gen_ai.request.max_tokens"] == 40
    assert attributes["gen_ai.request.temperature"] == 0.3


def test_a_failure_sets_error_type_and_the_span_status(settings: Settings, otel: Otel) -> None:
    with Client(settings, providers={"fake": FakeProvider(["no", "still no"])}) as client:
        ctx = observed(client, otel.tracing, chat("x", contract=client.contract(SCHEMA)))
        observed(client, otel.tracing, chat("y", model="not-configured"))
    failed, unknown = otel.finished()
    assert ctx.error is not None
    error_type = type(ctx.error).__name__
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == error_type
    assert failed.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert failed.status.status_code is StatusCode.ERROR
    assert unknown.name == "chat not-configured"  # the span says what was asked
    durations = otel.points("gen_ai.client.operation.duration")
    by_error = {p.attributes.get("error.type"): p for p in durations if p.attributes}
    assert by_error[error_type].count == 1
    # ... the metric's attributes stay bounded
    assert {p.attributes.get("gen_ai.request.model") for p in durations if p.attributes} == {
        "fake",
        "other",
    }


def test_token_usage_and_duration_histograms(settings: Settings, otel: Otel) -> None:
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "a b")}) as c:
        for _ in range(3):
            observed(c, otel.tracing, chat("one two three four"))
    tokens = otel.points("gen_ai.client.token.usage")
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens if p.attributes}
    assert by_type["input"].count == 3
    assert by_type["input"].sum == 12
    assert by_type["output"].sum == 6
    assert by_type["input"].attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "fake",
        "gen_ai.request.model": "fake",
        "gen_ai.response.model": "fake-model",
        "gen_ai.token.type": "input",
    }
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 3
    assert 0 < duration.sum < 10


def test_a_cache_hit_names_its_decision_and_reports_no_tokens(settings: Settings) -> None:
    cached = settings.model_copy(update={"cache": CacheSettings(mode="exact")})
    tracing = Tracing.build("memory", models=known_models(cached))
    telemetry = tracing.telemetry
    assert telemetry is not None
    assert telemetry.spans is not None
    with Client(cached, providers={"fake": FakeProvider(respond=lambda c: "x")}) as c:
        observed(c, tracing, chat("same question"))
        observed(c, tracing, chat("same question"))
    miss, hit = (dict(s.attributes or {}) for s in telemetry.spans.get_finished_spans())
    assert (miss["tether.cache.decision"], hit["tether.cache.decision"]) == ("miss", "exact")
    assert "gen_ai.usage.input_tokens" in miss
    assert "gen_ai.usage.input_tokens" not in hit
    assert hit["gen_ai.provider.name"] == "cache"
    tracing.close()


def test_on_an_event_loop_the_span_waits_for_the_next_turn(settings: Settings, otel: Otel) -> None:
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "ok")}) as client:
        ctx = asyncio.run(client.runtime.pipeline.run(Context(chat("hi"))))
    tracer = otel.tracer_provider.get_tracer("test")

    async def scenario() -> None:
        with tracer.start_as_current_span("POST /v1/chat/completions"):
            otel.tracing.observe(ctx)
            assert otel.finished() == []  # nothing built while the response is on its way
        await asyncio.sleep(0)

    asyncio.run(scenario())
    parent, request = otel.finished()  # the parent ended first
    assert (parent.name, request.name) == ("POST /v1/chat/completions", "chat fake")
    assert request.parent is not None
    assert request.parent.span_id == parent.context.span_id  # the caller's span is the parent


def test_a_sample_ratio_leaves_spans_out_but_measures_every_request(settings: Settings) -> None:
    tracing = Tracing.build("memory", sample_ratio=0.0)
    telemetry = tracing.telemetry
    assert telemetry is not None
    assert telemetry.spans is not None
    assert telemetry.reader is not None
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "x")}) as c:
        for _ in range(3):
            observed(c, tracing, chat("hi"))
    assert telemetry.spans.get_finished_spans() == ()
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    (scope,) = data.resource_metrics[0].scope_metrics
    durations = {m.name: m for m in scope.metrics}["gen_ai.client.operation.duration"]
    (point,) = durations.data.data_points
    assert isinstance(point, HistogramDataPoint)
    assert point.count == 3
    tracing.close()
    with pytest.raises(ValueError, match="between 0 and 1"):
        Tracing.build("memory", sample_ratio=1.5)


def test_in_the_background_spans_are_built_in_bursts_off_the_loop(settings: Settings) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing = Tracing(tracer_provider, MeterProvider(), background=True)
    threads: list[str] = []
    inner = tracing._emit

    def noted(*args: Any) -> None:
        threads.append(threading.current_thread().name)
        inner(*args)

    tracing._emit = noted  # type: ignore[method-assign]
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "ok")}) as client:
        ctx = asyncio.run(client.runtime.pipeline.run(Context(chat("hi"))))
    tracer = tracer_provider.get_tracer("test")

    async def scenario() -> None:
        with tracer.start_as_current_span("POST /v1/chat/completions"):
            for _ in range(3):
                tracing.observe(ctx)
        await asyncio.sleep(0)
        assert [s.name for s in spans.get_finished_spans()] == ["POST /v1/chat/completions"]

    asyncio.run(scenario())
    assert tracing.flush(10)
    parent, *requests = spans.get_finished_spans()
    assert [r.name for r in requests] == ["chat fake"] * 3
    assert all(r.parent is not None and r.parent.span_id == parent.context.span_id
               for r in requests)  # fmt: skip
    assert threads == ["tether-traces"] * 3
    tracing.close()
    tracer_provider.shutdown()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_the_exporting_thread_runs_at_the_lowest_priority() -> None:
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    class Noting(InMemorySpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().export(spans)

    exporter = LowPriorityExporter(Noting())
    done = threading.Thread(target=exporter.export, args=([],))
    done.start()
    done.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # unchanged

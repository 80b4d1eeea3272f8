"""The runtime: everything a call needs, built once from settings and shared by the library,
the CLI and the gateway. Providers, contracts, the prompt registry, the database, the request
log, the limit store, the circuit breakers and the pipeline over them.

Parts that touch the outside world (the database, the log's writer thread, Redis) open on
first use, so a client that never needs them never pays for them.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from typing import TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal
from sqlalchemy import Engine

from tether.cache.cache import ResponseCache
from tether.cache.grades import GradeStore
from tether.costs.limits import LimitStore, open_limit_store
from tether.observe.alerts import AlertEngine
from tether.observe.config import NO_EMBEDDER
from tether.observe.detectors import EvasiveDetector, shared_embedder
from tether.observe.metrics import Metrics, known_models
from tether.observe.request_log import RequestLog
from tether.observe.signal_worker import SignalListener, SignalObserver, SignalWorker
from tether.observe.tracing import Tracing
from tether.pipeline.build import build_pipeline
from tether.pipeline.chain import Pipeline
from tether.pipeline.context import Context
from tether.pipeline.planning import Planner
from tether.pipeline.stages.record import Observer
from tether.prompts.registry import Registry
from tether.providers.base import Provider
from tether.providers.pool import ProviderPool
from tether.routing.circuit import CircuitBreakers
from tether.settings import Settings
from tether.store.cache_grades import DatabaseGradeStore
from tether.store.engine import open_database
from tether.store.signals import add_signals

T = TypeVar("T")


class Runtime:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider] | None = None,
        *,
        log_requests: bool | None = None,
    ) -> None:
        self.settings: Settings = settings
        self.pool = ProviderPool(settings, providers)
        self.planner = Planner(self.pool, settings.max_repairs)
        self.circuits = CircuitBreakers(
            failures=settings.calls.circuit_failures, cooldown_s=settings.calls.circuit_cooldown_s
        )
        self._log_requests = (
            settings.calls.record_requests if log_requests is None else log_requests
        )
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self.limits: LimitStore = open_limit_store(settings.limits, lambda: self.engine)
        self._registry: Registry | None = None
        self._log: RequestLog | None = None
        self._signals: SignalWorker | None = None
        # Listeners of every request's signals (alerts): kept by the worker when it starts.
        self.signal_listeners: list[SignalListener] = []
        self._alerts: AlertEngine | None = None
        # What sees each finished request after its row is queued (record stage).
        self.observers: list[Observer] = []
        observe = settings.observe
        if observe.signals:
            self.observers.append(SignalObserver(lambda: self._signals))
        self.metrics: Metrics | None = Metrics.for_settings(settings) if observe.metrics else None
        if self.metrics is not None:
            self.observers.append(self.metrics)
        self.tracing: Tracing | None = None
        if observe.traces != "none":
            self.tracing = Tracing.build(observe.traces, models=known_models(settings),
                                         endpoint=observe.otlp_endpoint,
                                         sample_ratio=observe.trace_sample_ratio)  # fmt: skip
            self.observers.append(self.tracing)
        self._portal: BlockingPortal | None = None
        self._portal_exit = ExitStack()
        self.cache: ResponseCache = ResponseCache.from_settings(
            settings, self.planner, self._grade_store
        )
        self.pipeline: Pipeline = build_pipeline(self)

    # -- storage, opened on first use -------------------------------------------------------

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = open_database(self.settings.database)
            return self._engine

    @property
    def registry(self) -> Registry:
        engine = self.engine
        with self._lock:
            if self._registry is None:
                self._registry = Registry(engine, model_modules=self.settings.prompt_model_modules)
            return self._registry

    def _grade_store(self) -> GradeStore | None:
        """Where the cache's graded samples go: the database, when requests are recorded."""
        return DatabaseGradeStore(self.engine) if self._log_requests else None

    @property
    def logging(self) -> bool:
        return self._log_requests

    def always_log(self) -> None:
        """Record every request whatever the settings say (the gateway)."""
        self._log_requests = True

    @property
    def opened_log(self) -> RequestLog | None:
        return self._log

    def open_log(self) -> RequestLog:
        engine = self.engine
        with self._lock:
            if self._log is None:
                server = self.settings.server
                log = RequestLog(
                    engine,
                    spool_dir=self.settings.data_dir / "spool",
                    spool_max_bytes=server.spool_max_mb * 1024 * 1024,
                    retention_days=server.log_retention_days,
                )
                log.start()
                self._log = log
                atexit.register(log.close)  # a script that never closes its client loses no row
                if self.settings.observe.signals and self._signals is None:
                    self._signals = self._signal_worker(engine)
            return self._log

    @property
    def signal_worker(self) -> SignalWorker | None:
        """The signal worker, once the request log is open (None: signals off or not yet)."""
        return self._signals

    def _signal_worker(self, engine: Engine) -> SignalWorker:
        observe = self.settings.observe
        kind = observe.evasive_embedder
        embedder = shared_embedder(kind) if kind != NO_EMBEDDER else None
        if observe.alerts.rules and self._alerts is None:
            self._alerts = AlertEngine(engine, observe.alerts)
            self.signal_listeners.append(self._alerts)
        worker = SignalWorker(
            lambda rows: add_signals(engine, rows),
            listeners=self.signal_listeners,
            detector=EvasiveDetector(embedder),
            diversity_window=observe.diversity_window,
            evasive_sample=observe.evasive_sample,
            queue_size=observe.signal_queue,
        )
        worker.start()
        atexit.register(worker.close)
        return worker

    # -- running the pipeline from sync code ------------------------------------------------

    def run_sync(self, ctx: Context) -> Context:
        """Run the pipeline for `ctx` from synchronous code, on the runtime's own event loop
        (a thread started on first use), so sync and async callers share one path."""
        return self._blocking_portal().call(self.pipeline.run, ctx)

    def call_sync(self, func: Callable[..., Awaitable[T]], *args: object) -> T:
        """Await `func(*args)` on the runtime's loop from synchronous code (the CLI's cache
        commands: the cache's parts live on that loop)."""
        return self._blocking_portal().call(func, *args)

    def _blocking_portal(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._portal = self._portal_exit.enter_context(start_blocking_portal())
            return self._portal

    def close(self) -> None:
        with self._lock:
            log, self._log = self._log, None
            signals, self._signals = self._signals, None
        if log is not None:
            log.close()
            atexit.unregister(log.close)
        if signals is not None:
            signals.close()
            atexit.unregister(signals.close)
        if self._alerts is not None:
            self._alerts.close()  # deliveries under way finish
        if self.tracing is not None:
            self.tracing.close()
        if self._portal is not None:
            self._portal.call(self.limits.close)
            self._portal.call(self.cache.close)
        else:
            self.cache.close_now()
        self._portal_exit.close()
        self._portal = None
        self.pool.close()
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

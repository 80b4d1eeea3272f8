"""The response cache behind the pipeline's cache stage (and `tether cache`, the admin API).

A lookup tries the exact key, then (in semantic mode) the request's neighbours: each must pass
the guards, score at least the threshold calibrated for the prompt's δ, and still meet the
request's contract. A miss keeps its best neighbour: once the model has answered, whether the
neighbour's answer matched the new one is a graded sample for calibration, at no extra cost.
A share of semantic hits (`verify_rate`) is not served but re-checked the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tether.cache.backends.base import BackendStats, CacheBackend, Selector
from tether.cache.backends.registry import open_backend
from tether.cache.config import CacheSettings, PromptCache
from tether.cache.decision import CacheDecision
from tether.cache.embedders.base import Vectors
from tether.cache.embedding import CacheEmbedder
from tether.cache.entailment import EntailmentCheck
from tether.cache.entry import Answer, Entry
from tether.cache.grades import Grade, GradeStore
from tether.cache.keys import (
    LOCAL_SCOPE,
    SHARED_SCOPE,
    Lookup,
    Policy,
    by_meaning,
    cacheable,
    lookup,
)
from tether.cache.semantic.guards import veto
from tether.cache.semantic.scorer import Scorer, bundled, load
from tether.cache.thresholds import Thresholds
from tether.errors import TetherError
from tether.evals.assertions import SIMILAR_THRESHOLD
from tether.pipeline.context import Context
from tether.pipeline.planning import Planner
from tether.result import Result
from tether.settings import Settings

log = logging.getLogger("tether.cache")
CACHED_PROVIDER = "cache"
# Misses grade only neighbours that came this close: far ones tell calibration nothing (every
# threshold worth having lies above) and would cost a write per miss.
GRADE_FLOOR = 0.5


@dataclass
class Neighbour:
    entry: Entry
    similarity: float
    score: float


@dataclass
class Pending:
    """What a lookup leaves for the request's end: where to file the answer, what to grade."""

    lookup: Lookup
    policy: Policy
    vector: Vectors | None = None
    neighbour: Neighbour | None = None  # the best one not served (graded once answered)


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        *,
        backend: Callable[[], CacheBackend],
        embedder: Callable[[], CacheEmbedder],
        grades: Callable[[], GradeStore | None],
        entailment: EntailmentCheck | None = None,
    ) -> None:
        self.settings = settings
        self._entailment = entailment
        self._open_backend = backend
        self._open_embedder = embedder
        self._grades = grades
        self._backend: CacheBackend | None = None
        self._embedder: CacheEmbedder | None = None
        self._lock = threading.Lock()
        path = settings.semantic.scorer
        scorer, calibration = bundled() if path is None else load(path)
        self._scorer: Scorer = scorer
        self.thresholds = Thresholds(calibration, scorer.embedder, grades,
                                     min_grades=settings.semantic.min_grades)  # fmt: skip
        self._pending: dict[str, Pending] = {}
        self._default_policy = Policy.of(settings, None)
        self._policies: dict[PromptCache, Policy] = {}
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(
        cls, settings: Settings, planner: Planner, grades: Callable[[], GradeStore | None]
    ) -> ResponseCache:
        cache_settings = settings.cache
        judge = cache_settings.semantic.entailment_model
        return cls(
            cache_settings,
            backend=lambda: open_backend(cache_settings, settings.data_dir),
            embedder=lambda: CacheEmbedder(
                cache_settings.semantic.embedder, planner.pool, settings
            ),
            grades=grades,
            entailment=EntailmentCheck(judge, planner) if judge is not None else None,
        )

    # -- parts, opened on first use -----------------------------------------------------------

    @property
    def scorer(self) -> Scorer:
        """What ranks neighbours (and what calibration grades are scored with)."""
        return self._scorer

    @property
    def backend(self) -> CacheBackend:
        backend = self._backend
        if backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = self._open_backend()
                backend = self._backend
        return backend

    async def opened(self) -> CacheBackend:
        """The backend, opened in a thread the first time: opening reads the local file (up
        to max_entries entries) or builds a Redis client, never on the event loop."""
        backend = self._backend
        if backend is None:
            backend = await asyncio.to_thread(lambda: self.backend)
        return backend

    @property
    def embedder(self) -> CacheEmbedder:
        embedder = self._embedder
        if embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = self._open_embedder()
                embedder = self._embedder
        return embedder

    # -- the request path ---------------------------------------------------------------------

    def policy(self, ctx: Context) -> Policy:
        compiled = ctx.compiled
        own = compiled.spec.cache if compiled is not None else None
        if own is None:
            return self._default_policy
        found = self._policies.get(own)
        if found is None:  # a prompt's policy is worked out once (the hot path stays short)
            found = self._policies[own] = Policy.of(self.settings, own)
        return found

    async def lookup(self, ctx: Context) -> Entry | None:
        """The entry whose answer serves `ctx` (its results are set), or None; either way
        `ctx.cache` says what happened when the cache was consulted. A cache that cannot be
        reached is a miss, never a failed request."""
        try:
            return await self._lookup(ctx)
        except (TetherError, OSError) as exc:
            log.warning("cache lookup failed for %s: %s", ctx.request_id, exc)
            if ctx.cache is not None:
                ctx.cache.reason = "the cache could not be reached"
            return None

    async def _lookup(self, ctx: Context) -> Entry | None:
        policy = self.policy(ctx)
        if policy.mode == "off" or ctx.ask.operation != "chat":
            return None
        skip = _uncacheable(ctx)
        if skip is not None:
            ctx.cache = CacheDecision("skip", reason=skip)
            return None
        if ctx.ask.cache == "off":
            ctx.cache = CacheDecision("bypass", reason="the caller asked not to use the cache")
            return None
        found = self._lookup_of(ctx, policy)
        if ctx.ask.cache == "refresh":
            ctx.cache = CacheDecision("bypass", reason="the caller asked for a fresh answer")
            self._pending[ctx.request_id] = Pending(self._by_meaning(ctx, found, policy), policy)
            return None
        decision = CacheDecision("miss")
        ctx.cache = decision
        now = time.time()
        entry = await (await self.opened()).get(found.key, now)
        if entry is not None:
            if _serve(ctx, entry):
                decision.kind, decision.entry = "exact", entry.key
                _savings(ctx, decision, entry)
                return entry  # nothing pending: the request ends without a cache write
            decision.reason = "the cached answer no longer meets the contract"
        # a miss: the fresh answer is filed when it comes
        pending = Pending(self._by_meaning(ctx, found, policy), policy)
        self._pending[ctx.request_id] = pending
        if pending.lookup.text is None:
            return None
        return await self._semantic(ctx, pending, decision, now)

    async def _semantic(
        self, ctx: Context, pending: Pending, decision: CacheDecision, now: float
    ) -> Entry | None:
        found, policy = pending.lookup, pending.policy
        assert found.text is not None
        embedder = self.embedder
        vector = await embedder.vector(found.text)
        if vector is None:
            decision.reason = "too long to compare by meaning"
            return None
        pending.vector = vector
        calibration = await self.thresholds.get(ctx.prompt_name, policy.delta, embedder.name)
        decision.threshold = calibration.threshold
        neighbours = await (await self.opened()).search(
            found.namespace, vector, self.settings.semantic.neighbours, now
        )
        best: Neighbour | None = None
        for entry, similarity in neighbours:
            if entry.key == found.key or entry.text is None:
                continue
            if decision.similarity is None:
                decision.similarity = round(similarity, 4)
            guard = veto(found.text, entry.text, self.settings.semantic.guards)
            if guard is not None:
                decision.vetoed_by = decision.vetoed_by or guard
                continue
            score = self._scorer.score(found.text, entry.text, similarity)
            if best is None or score > best.score:
                best = Neighbour(entry, similarity, score)
        if best is None:
            return None
        decision.similarity, decision.score = round(best.similarity, 4), round(best.score, 4)
        threshold = calibration.threshold
        if threshold is None:
            decision.reason = f"no threshold meets δ={policy.delta} yet ({calibration.source})"
        elif best.score >= threshold:
            if random.random() < self.settings.semantic.verify_rate:
                decision.kind, decision.verified = "semantic", True
                pending.neighbour = best  # answered by the model, then graded
                return None
            if not await self._entailed(ctx, best.entry, found.text):
                decision.vetoed_by = "entailment"
                return None
            if _serve(ctx, best.entry):
                decision.kind, decision.entry, decision.vetoed_by = "semantic", best.entry.key, None
                _savings(ctx, decision, best.entry)
                del self._pending[ctx.request_id]
                return best.entry
            decision.reason = "the neighbour's answer does not meet the contract"
            return None
        if best.score >= GRADE_FLOOR:
            pending.neighbour = best
        return None

    async def _entailed(self, ctx: Context, entry: Entry, text: str) -> bool:
        """The entailment model's yes (always yes when none is configured); what it cost is
        the request's."""
        if self._entailment is None or entry.text is None:
            return True
        same, attempts = await self._entailment.same(entry.text, text)
        ctx.attempts.extend(attempts)
        return same

    async def finish(self, ctx: Context) -> None:
        """After the request: file a fresh answer; grade the neighbour a miss passed over."""
        pending = self._pending.pop(ctx.request_id, None)
        decision = ctx.cache
        if pending is None or decision is None or (decision.hit and not decision.verified):
            return
        answer = _answer(ctx)
        if answer is None:
            return
        if pending.neighbour is not None:
            self._in_background(self._grade(ctx, pending.neighbour, answer, decision.verified))
        if ctx.ask.cache == "off":
            return
        await self._store(ctx, pending, answer)
        decision.stored = True

    def finish_waits(self, ctx: Context) -> bool:
        return ctx.request_id in self._pending

    async def _store(self, ctx: Context, pending: Pending, answer: Answer) -> None:
        found, policy = pending.lookup, pending.policy
        vector = pending.vector
        if found.text is not None and vector is None:
            vector = await self.embedder.vector(found.text)
        now = time.time()
        found_version = ctx.found.version if ctx.found is not None else None
        entry = Entry(
            key=found.key,
            namespace=found.namespace,
            scope=found.scope,
            prompt=ctx.prompt_name,
            version=found_version,
            model=ctx.model or "",
            text=found.text if vector is not None else None,
            answer=answer,
            created_at=now,
            expires_at=now + policy.ttl_s,
            cost_usd=sum(a.cost_usd for a in ctx.attempts),
            latency_s=time.perf_counter() - ctx.started,
            tags=policy.tags,
            vector=vector,
        )
        await (await self.opened()).put(entry)

    async def _grade(
        self, ctx: Context, neighbour: Neighbour, answer: Answer, verify: bool
    ) -> None:
        store = self._grades()
        if store is None:
            return
        right = await self._same(ctx, neighbour.entry.answer, answer)
        grade = Grade(
            prompt=ctx.prompt_name,
            score=neighbour.score,
            similarity=neighbour.similarity,
            right=right,
            source="verify" if verify else "miss",
            request_id=ctx.request_id,
            created_at=time.time(),
        )
        await asyncio.to_thread(store.add, [grade])

    async def _same(self, ctx: Context, cached: Answer, fresh: Answer) -> bool:
        """Whether the cached answer would have been right: equal values under a contract,
        equal or closely similar text otherwise (the `similar` assertion's threshold)."""
        old, new = cached.choices[0], fresh.choices[0]
        if ctx.contract is not None:
            try:
                return bool(orjson.loads(old) == orjson.loads(new))
            except orjson.JSONDecodeError:
                return False
        if " ".join(old.split()) == " ".join(new.split()):
            return True
        if veto(new, old, self.settings.semantic.guards) is not None:
            return False  # "open at 9" and "open at 10" are close in meaning, not equal
        vectors = await self.embedder.embed([old, new])
        return float(vectors[0] @ vectors[1]) >= SIMILAR_THRESHOLD

    def _in_background(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("cache grading failed: %s", task.exception())

    # -- administration -----------------------------------------------------------------------

    async def invalidate(self, selector: Selector) -> int:
        return await (await self.opened()).invalidate(selector, time.time())

    async def stats(self) -> BackendStats:
        return await (await self.opened()).stats(time.time())

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    def close_now(self) -> None:
        """Close from synchronous code with no event loop at hand (the gateway's shutdown):
        the local backend's file gets every pending write."""
        backend, self._backend = self._backend, None
        if backend is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(backend.close())
            return
        shutdown = getattr(backend, "shutdown", None)
        if callable(shutdown):
            shutdown()

    def _lookup_of(self, ctx: Context, policy: Policy) -> Lookup:
        return lookup(
            scope=_scope(ctx, policy),
            prompt=ctx.prompt_name,
            version=ctx.found.version if ctx.found is not None else None,
            model=ctx.model or "",
            messages=ctx.messages,
            inputs=ctx.ask.inputs,
            contract=ctx.contract_name,
            tools=ctx.ask.tools,
            params=ctx.params,
            n=ctx.ask.n,
        )

    def filed_under(self, ctx: Context) -> Lookup:
        """Where `ctx`'s answer is (or would be) filed: its exact key, namespace and text."""
        policy = self.policy(ctx)
        return self._by_meaning(ctx, self._lookup_of(ctx, policy), policy)

    def _by_meaning(self, ctx: Context, found: Lookup, policy: Policy) -> Lookup:
        if policy.mode != "semantic":
            return found
        return by_meaning(found, ctx.messages, ctx.ask.inputs, policy.compare, ctx.ask.tools)


def _uncacheable(ctx: Context) -> str | None:
    if ctx.ask.tools is not None:
        return "tool calls are not cached"
    if not cacheable(ctx.params):
        return "logprobs are per call"
    return None


def _scope(ctx: Context, policy: Policy) -> str:
    """The tenant: a key's own cache, the admin's, or the library's; `shared` for all."""
    if policy.shared:
        return SHARED_SCOPE
    if ctx.ask.key is not None:
        return f"key:{ctx.ask.key.id}"
    return "admin" if ctx.admin else LOCAL_SCOPE


def _serve(ctx: Context, entry: Entry) -> bool:
    """Answer `ctx` from `entry`, each choice validated against today's contract first."""
    results: list[Result[Any]] = []
    elapsed = time.perf_counter() - ctx.started
    for raw in entry.answer.choices:
        output: Any = raw
        if ctx.contract is not None:
            check, output = ctx.contract.check(raw)
            if check.errors:
                return False
        results.append(
            Result(output=output, raw=raw, model=entry.answer.upstream,
                   provider=CACHED_PROVIDER, attempts=(), latency_s=elapsed)
        )  # fmt: skip
    ctx.results = results
    ctx.answered_by = entry.answer.model
    return True


def _savings(ctx: Context, decision: CacheDecision, entry: Entry) -> None:
    decision.saved_usd = entry.cost_usd
    decision.saved_s = max(entry.latency_s - (time.perf_counter() - ctx.started), 0.0)


def _answer(ctx: Context) -> Answer | None:
    """What to file: a complete answer from a model (not an error, a cut-off text, a rule's
    answer, or tool calls)."""
    if ctx.error is not None or not ctx.results or ctx.answer is not None:
        return None
    for result in ctx.results:
        if result.tool_calls or not result.attempts:
            return None
        if result.attempts[-1].finish_reason != "stop":
            return None
    first = ctx.results[0]
    return Answer(
        choices=tuple(result.raw for result in ctx.results),
        pieces=tuple(ctx.streamed) if ctx.streamed else None,
        model=ctx.answered_by or first.model,
        upstream=first.model,
        provider=first.provider,
    )

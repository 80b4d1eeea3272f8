"""Per-key request and token rate limits (sliding one-minute windows) and money budgets,
kept in process. (A shared Redis backend for several replicas is a later step.)"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping

from tether.costs.limits.base import Budget
from tether.costs.limits.quota import Allowance, Quota
from tether.errors import BudgetExhausted, LimitExceeded
from tether.server.keys import ApiKey

WINDOW_S = 60.0


class Limiter:
    def __init__(self, spent: Mapping[str, float] | None = None) -> None:
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[tuple[float, int]]] = {}
        self._spent: dict[str, float] = dict(spent or {})
        self._lock = threading.Lock()

    def admit(self, key: ApiKey) -> Quota:
        """Check (and count) one request; raise if a limit or the budget is exceeded. Returns
        what is left of the key's limits after this request."""
        now = time.monotonic()
        with self._lock:
            if key.budget_usd is not None:
                spent = self._spent.get(key.id, 0.0)
                if spent >= key.budget_usd:
                    budget = Budget.for_key(key.id, key.budget_usd, "total")
                    raise BudgetExhausted(
                        scope=budget.scope,
                        period=budget.period,
                        spent_usd=spent,
                        limit_usd=budget.limit_usd,
                        fix=budget.fix,
                    )
            if key.tpm is not None:
                window = self._trim_tokens(key.id, now)
                used = sum(n for _, n in window)
                if used >= key.tpm:
                    raise LimitExceeded(
                        f"token rate limit of {key.tpm}/min reached",
                        retry_after_s=WINDOW_S - (now - window[0][0]),
                    )
            if key.rpm is not None:
                stamps = self._requests.setdefault(key.id, deque())
                while stamps and now - stamps[0] > WINDOW_S:
                    stamps.popleft()
                if len(stamps) >= key.rpm:
                    raise LimitExceeded(
                        f"request rate limit of {key.rpm}/min reached",
                        retry_after_s=WINDOW_S - (now - stamps[0]),
                    )
                stamps.append(now)
            return self._quota(key, now)

    def quota(self, key: ApiKey) -> Quota:
        """What is left of the key's limits now, without counting a request."""
        now = time.monotonic()
        with self._lock:
            return self._quota(key, now)

    def _quota(self, key: ApiKey, now: float) -> Quota:
        requests = tokens = None
        if key.rpm is not None:
            stamps = self._requests.get(key.id) or deque()
            reset = WINDOW_S - (now - stamps[0]) if stamps else 0.0
            requests = Allowance(key.rpm, max(key.rpm - len(stamps), 0), reset)
        if key.tpm is not None:
            window = self._trim_tokens(key.id, now)
            reset = WINDOW_S - (now - window[0][0]) if window else 0.0
            tokens = Allowance(key.tpm, max(key.tpm - sum(n for _, n in window), 0), reset)
        return Quota(requests, tokens)

    def charge(self, key: ApiKey, tokens: int, cost_usd: float) -> None:
        """Count what an answered request used."""
        now = time.monotonic()
        with self._lock:
            if key.tpm is not None:
                self._tokens.setdefault(key.id, deque()).append((now, tokens))
            if cost_usd:
                self._spent[key.id] = self._spent.get(key.id, 0.0) + cost_usd

    def spent(self, key_id: str) -> float:
        with self._lock:
            return self._spent.get(key_id, 0.0)

    def _trim_tokens(self, key_id: str, now: float) -> deque[tuple[float, int]]:
        window = self._tokens.setdefault(key_id, deque())
        while window and now - window[0][0] > WINDOW_S:
            window.popleft()
        return window

"""One process of the cross-process limit tests: opens a shared store, prints "ready", waits
for a line on stdin, fires `--count` concurrent reservations, prints what happened as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from tether.costs.limits import Budget, Claim, LimitStore, RateLimit
from tether.costs.limits.database import DatabaseLimitStore
from tether.costs.limits.redis import RedisLimitStore
from tether.errors import BudgetExhausted, LimitExceeded

SHARED_KEY = "key_shared"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["database", "redis"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", default="tether")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--cost", type=float, default=0.0)
    parser.add_argument("--budget", type=float, help="a monthly budget in USD")
    parser.add_argument("--rpm", type=int)
    asyncio.run(fire(parser.parse_args()))


async def fire(args: argparse.Namespace) -> None:
    store: LimitStore = (
        DatabaseLimitStore.open(args.url)
        if args.store == "database"
        else RedisLimitStore.open(args.url, key_prefix=args.prefix)
    )
    budget = Budget.for_key(SHARED_KEY, args.budget, "month") if args.budget else None
    claim = Claim(
        rates=(RateLimit(f"key:{SHARED_KEY}", "requests", args.rpm),) if args.rpm else (),
        budgets=(budget,) if budget else (),
        cost_usd=args.cost,
    )
    await store.spent(Budget.for_key("warm-up", 1.0, "total"))  # connect before the start
    print("ready", flush=True)
    sys.stdin.readline()
    outcomes = await asyncio.gather(*(_one(store, claim) for _ in range(args.count)))
    await store.close()
    print(json.dumps({o: outcomes.count(o) for o in ("admitted", "refused", "failed")}))


async def _one(store: LimitStore, claim: Claim) -> str:
    try:
        await store.reserve(claim)
    except (BudgetExhausted, LimitExceeded):
        return "refused"
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return "failed"
    return "admitted"


if __name__ == "__main__":
    main()

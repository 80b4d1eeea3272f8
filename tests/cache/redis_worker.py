"""A second process on the Redis cache: `put` files entries, `find` waits for the last of them
to appear, looks them all up and prints what it found as JSON. Entries and vectors come from
their number, so both sides agree.

    python tests/cache/redis_worker.py put|find REDIS_URL KEY_PREFIX COUNT
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time

import numpy as np
import orjson
from redis.asyncio import Redis

from tether.cache.backends.redis import RedisBackend
from tether.cache.entry import Answer, Entry

DIMENSIONS = 8
NAMESPACE = "ns-shared"


def key_for(number: int) -> str:
    return hashlib.blake2b(f"worker-{number}".encode(), digest_size=16).hexdigest()


def vector_for(number: int) -> np.ndarray:
    vector = np.random.default_rng(number).standard_normal(DIMENSIONS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def entry_for(number: int) -> Entry:
    now = time.time()
    return Entry(
        key=key_for(number),
        namespace=NAMESPACE,
        scope="local",
        prompt="worker",
        version="1",
        model="fake",
        text=f"question {number}",
        answer=Answer((f"answer {number}",), None, "fake", "fake-1", "fake"),
        created_at=now,
        expires_at=now + 600,
        cost_usd=0.001,
        latency_s=0.5,
        vector=vector_for(number),
    )


async def main(mode: str, url: str, prefix: str, count: int) -> None:
    backend = RedisBackend(Redis.from_url(url), dimensions=DIMENSIONS, key_prefix=prefix)
    try:
        if mode == "put":
            for number in range(count):
                await backend.put(entry_for(number))
            return
        deadline = time.monotonic() + 60
        while await backend.get(key_for(count - 1), time.time()) is None:
            if time.monotonic() > deadline:
                raise SystemExit("the entries never appeared")
            await asyncio.sleep(0.05)
        found: dict[str, list[str | None]] = {"exact": [], "nearest": []}
        for number in range(count):
            entry = await backend.get(key_for(number), time.time())
            found["exact"].append(None if entry is None else entry.answer.choices[0])
            hits = await backend.search(NAMESPACE, vector_for(number), 1, time.time())
            found["nearest"].append(hits[0][0].key if hits else None)
        sys.stdout.write(orjson.dumps(found).decode())
    finally:
        await backend.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))

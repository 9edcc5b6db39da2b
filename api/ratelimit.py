"""Per-client rate limits of the API: shared by all workers and hosts on one database (:mod:`ecert.ratelimit`).

:func:`shared_limit` gives the runtime's limiter for a scope: public verification lookups decide in
memory against claims synced every ``rate_limit_sync_seconds`` (no database write per request);
login and registration attempts (``direct=True``) count in the database on every attempt.
:class:`TokenBuckets` is the in-process token bucket (one worker's own; tests and single-process
tools use it). Not a substitute for a rate limit at the edge; a second line against enumeration.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol

from ecert.ratelimit import DirectWindows, SharedWindows, retry_after
from ecert.runtime import Runtime


class Limiter(Protocol):
    def take(self, key: str, cost: float = 1.0) -> float: ...

    def charge(self, key: str, cost: float) -> None: ...


def shared_limit(runtime: Runtime, scope: str, rate: float, burst: int, *, direct: bool = False) -> Limiter:
    """A limiter over the runtime's database: batched claims, or (``direct``) one transaction per attempt."""
    if direct:
        return DirectWindows(runtime.engine, scope, rate, burst)
    return SharedWindows(runtime.engine, scope, rate, burst, sync_seconds=runtime.settings.rate_limit_sync_seconds,
                         expected_workers=runtime.settings.workers)

__all__ = ["TokenBuckets", "Limiter", "shared_limit"]


class TokenBuckets:
    def __init__(self, rate: float, burst: int, *, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 if allowed (and charged), else the seconds to wait before ``cost`` tokens are available."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    def charge(self, key: str, cost: float) -> None:
        """Take extra tokens after the fact (a failed lookup costs more), going no lower than empty."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = max(0.0, min(self.burst, tokens + (now - at) * self.rate) - cost)
            self._buckets[key] = (tokens, now)

    @staticmethod
    def retry_after(wait: float) -> str:
        return retry_after(wait)

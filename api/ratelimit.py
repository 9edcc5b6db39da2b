"""A small in-process token bucket per client key (the client IP), for public lookups.

Each worker process keeps its own buckets (so N workers allow up to N times the rate); the map
of buckets is bounded (idle buckets are dropped first), so a flood of addresses cannot grow it
without limit. Not a substitute for a rate limit at the edge; a second line against enumeration.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

__all__ = ["TokenBuckets"]


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
        return str(max(1, math.ceil(wait)))

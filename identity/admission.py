"""Admission control for password checks: a bounded queue per worker, beyond which logins are shed at once.

An argon2id check costs ``passwords.HASH_SECONDS`` of CPU (about 50-60 ms with ecert's parameters), so a
worker completes only so many logins per second. Admitting more than that rate times the latency target
only makes everyone wait longer (200 concurrent logins: p99 9.8 s on 2 cores). So at most ``capacity``
logins (and registrations, which hash too) are in progress per worker;
the next is refused before any work (no Vault, database or hash; nothing written, nothing counted
against the address) with :class:`LoginBusy`, 503 and a Retry-After of the time the queue takes to drain.
The argon2id parameters are never lowered for load.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ecert.errors import ServiceUnavailable
from identity import passwords

__all__ = ["LoginBusy", "LoginAdmission", "hashes_per_second"]


class LoginBusy(ServiceUnavailable):
    """Too many logins in progress on this server; retry after the seconds in Retry-After."""

    slug = "login-busy"
    title = "Too many logins at once"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after  # type: ignore[misc]  # this instance's wait, not the class default


def hashes_per_second(workers: int, *, hash_seconds: float | None = None, cpus: int | None = None) -> float:
    """Password checks per second one of ``workers`` worker processes finishes.

    Measured: ``HASH_SLOTS`` threads over the recent wall time of one check on them (which already
    includes waiting for CPUs shared with other workers and processes). Before the first check: the
    one-hash cost timed at import, with the CPUs shared evenly between the workers.
    """
    if hash_seconds is None and (observed := passwords.observed_hash_seconds()) is not None:
        return passwords.HASH_SLOTS / max(observed, 1e-3)
    cost = hash_seconds if hash_seconds is not None else passwords.HASH_SECONDS
    return (cpus or os.cpu_count() or 1) / max(cost, 1e-3) / max(1, workers)


class LoginAdmission:
    """At most ``capacity`` logins in progress in this process, shed beyond.

    A fixed ``queue``; or (``queue=0``) the logins this worker completes within ``target_seconds``,
    re-estimated as logins complete: throughput by Little's law, logins in progress over the time an
    admitted login takes (both exponentially weighted), so whatever limits logins (hashing, Vault,
    the database, the audit chain, other processes on the CPUs) is measured, not assumed. Before the
    first login: from the hash cost timed at start-up (:func:`hashes_per_second`). Never below one
    login per hash thread.
    """

    def __init__(self, queue: int, *, target_seconds: float = 1.5, workers: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue, self.target_seconds, self.workers, self._clock = queue, target_seconds, workers, clock
        self.in_progress = 0
        self.shed = 0
        self._busy: float | None = None  # mean logins in progress, seen by each admitted login
        self._latency: float | None = None  # mean seconds an admitted login takes
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Logins per second this worker completes (estimated)."""
        if self._busy is None or not self._latency:
            return hashes_per_second(self.workers)
        return max(self._busy / self._latency, 0.1)

    @property
    def capacity(self) -> int:
        if self.queue:
            return self.queue
        return max(passwords.HASH_SLOTS, math.floor(self.rate * self.target_seconds))

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for one login, or raise LoginBusy at once."""
        with self._lock:
            if self.in_progress >= self.capacity:
                self.shed += 1
                wait = max(1, math.ceil(self.in_progress / self.rate))
                raise LoginBusy(f"too many logins at once; retry in {wait} s", retry_after=wait)
            self.in_progress += 1
            busy = self.in_progress
        started = self._clock()
        try:
            yield
        finally:
            took = self._clock() - started
            with self._lock:
                self.in_progress -= 1
                self._busy = _mean(self._busy, busy)
                self._latency = _mean(self._latency, took)


def _mean(mean: float | None, value: float, weight: float = 0.05) -> float:
    return value if mean is None else (1 - weight) * mean + weight * value

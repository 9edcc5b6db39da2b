"""Rate limits shared by every API worker and host that use one database: approximate sliding windows.

A limit of ``burst`` requests at a sustained ``rate`` per second per client key is enforced as at
most ``L = burst`` hits in any sliding window of ``W = burst / rate`` seconds, estimated from two
fixed windows as ``previous * (1 - elapsed / W) + current`` (rows of ``ecert_rate_count``).

**Batched** (:class:`SharedWindows`, public verification lookups, the hot path): ``take`` decides
in memory, with no database access. Every ``sync_seconds`` (F) a background thread of each worker
runs one transaction: it adds what the worker admitted since the last sync, reads the cluster's
counts of the keys it served (and of every key past ``L/4``), counts the live workers N (those
that synced within 3F, at least this host's ``workers``), and *claims* for each key it served a share ``(L - estimate) / N`` of what
is left, adding the claim to the count at once (unused claims are given back at the next sync).
Between syncs the worker admits a key only within its claim, so claims cannot add up past L. A
key the worker has no claim for yet gets a provisional allowance of ``L / (2N)`` (less if the key
is known to be near its limit), accounted at the next sync.

Error bound: once a key has been synced by the workers serving it, the cluster admits at most L
per sliding window (the sliding estimate itself is approximate: it assumes the previous window's
hits were evenly spread). In the first sync interval after a key reaches workers that had no claim
for it, each of them may admit up to ``L / (2N)`` unaccounted, so at most ``L / 2`` over the limit,
once. The price is under-admission: a client whose requests all reach one worker gets about
``(L - estimate) / N`` at once and the rest over the following syncs (other workers' unused claims
come back within F), and Retry-After is then 1 s. Clocks of hosts must agree to well under W
(NTP); if the database is unreachable a worker keeps enforcing its own claims and allowances.

**Direct** (:class:`DirectWindows`, login and registration per address: rare, security-critical):
every ``take`` is one short transaction that adds the hit and reads the window back; a hit over
the limit is taken back. Exact across workers, up to the sliding estimate.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ecert.models import RateCount, RateWorker

if TYPE_CHECKING:
    from ecert.settings import Settings

__all__ = ["Limiter", "TokenBuckets", "shared_limit", "SharedWindows", "DirectWindows", "retry_after"]

log = logging.getLogger(__name__)
_COUNT = RateCount.__table__  # type: ignore[attr-defined]  # set on table models; SQLModel does not declare it
_WORKER = RateWorker.__table__  # type: ignore[attr-defined]  # set on table models; SQLModel does not declare it
_KEY_CHARS = 128


def retry_after(wait: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


def _upsert(connection: Connection, table: sa.Table, rows: list[dict[str, object]], index: list[str],
            add: str | None = None, returning: bool = False) -> list[float]:
    """INSERT ... ON CONFLICT DO UPDATE (PostgreSQL, SQLite): ``add`` is summed into the existing row, else replaced."""
    if not rows:
        return []
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    changed = {c: (table.c[c] + statement.excluded[c]) if c == add else statement.excluded[c]
               for c in rows[0] if c not in index}
    statement = statement.on_conflict_do_update(index_elements=index, set_=changed)
    if returning:
        assert add is not None and len(rows) == 1
        return [float(connection.execute(statement.returning(table.c[add]), rows[0]).scalar_one())]
    connection.execute(statement, rows)
    return []


class _Windows:
    """What both modes share: the window arithmetic and the estimate."""

    def __init__(self, engine: Engine, scope: str, rate: float, burst: int, *, now: Callable[[], float] = time.time) -> None:
        self.engine, self.scope, self.limit = engine, scope, float(burst)
        self.window = burst / rate
        self._now = now

    def _slot(self, at: float) -> tuple[int, float]:
        """The fixed window containing ``at`` and how far into it (0..1)."""
        position = at / self.window
        slot = math.floor(position)
        return slot, position - slot

    def estimate(self, previous: float, current: float, fraction: float) -> float:
        return previous * (1.0 - fraction) + current

    def wait(self, previous: float, current: float, fraction: float, cost: float) -> float:
        """Seconds until the estimate leaves room for ``cost`` (previous window decaying, then the current one)."""
        room = self.limit - cost
        if current <= room and previous > 0:  # the previous window's share decays linearly over this one
            return max(0.0, (1.0 - (room - current) / previous) - fraction) * self.window
        excess = current - room  # then the current window becomes the previous one and decays in turn
        return (1.0 - fraction) * self.window + (excess / current if current > 0 else 1.0) * self.window

    @staticmethod
    def _key(key: str) -> str:
        return key[:_KEY_CHARS]


class DirectWindows(_Windows):
    """Every hit goes to the database at once (low-rate, security-critical limits)."""

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 if allowed (and counted), else the seconds until ``cost`` fits."""
        key = self._key(key)
        slot, fraction = self._slot(self._now())
        with self.engine.begin() as connection:
            row = {"scope": self.scope, "key": key, "slot": slot, "hits": cost}
            current = _upsert(connection, _COUNT, [row], ["scope", "key", "slot"], add="hits", returning=True)[0]
            previous = connection.execute(sa.select(_COUNT.c.hits).where(
                _COUNT.c.scope == self.scope, _COUNT.c.key == key, _COUNT.c.slot == slot - 1)).scalar() or 0.0
            if self.estimate(previous, current, fraction) <= self.limit + 1e-9:
                return 0.0
            connection.execute(_COUNT.update().where(_COUNT.c.scope == self.scope, _COUNT.c.key == key,
                                                     _COUNT.c.slot == slot).values(hits=_COUNT.c.hits - cost))
            if secrets.randbelow(64) == 0:  # now and then: drop windows no estimate needs any more
                connection.execute(_COUNT.delete().where(_COUNT.c.scope == self.scope, _COUNT.c.slot < slot - 1))
        return self.wait(previous, current - cost, fraction, cost)

    def charge(self, key: str, cost: float) -> None:
        slot, _ = self._slot(self._now())
        with self.engine.begin() as connection:
            _upsert(connection, _COUNT, [{"scope": self.scope, "key": self._key(key), "slot": slot, "hits": cost}],
                    ["scope", "key", "slot"], add="hits")


@dataclass
class _Local:
    """One key on this worker: its claim (already counted in the database) and what was admitted since the last sync."""

    claim: float = 0.0
    claim_slot: int | None = None
    used: float = 0.0


@dataclass(frozen=True)
class _Seen:
    """The cluster's counts of a key at the last sync."""

    slot: int
    previous: float
    current: float


class SharedWindows(_Windows):
    """In-memory decisions against claims from the shared table, synced every ``sync_seconds`` (see module doc)."""

    def __init__(self, engine: Engine, scope: str, rate: float, burst: int, *, sync_seconds: float = 1.0,
                 expected_workers: int = 1, max_clients: int = 100_000, now: Callable[[], float] = time.time,
                 background: bool = True) -> None:
        super().__init__(engine, scope, rate, burst, now=now)
        self.sync_seconds, self.max_clients = sync_seconds, max_clients
        self.worker = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.expected = self.workers = max(1, expected_workers)  # this host's workers: the least N can be
        self._keys: OrderedDict[str, _Local] = OrderedDict()
        self._seen: dict[str, _Seen] = {}
        self._active: set[str] = set()  # keys served since the last sync
        self._claimed: set[str] = set()  # keys holding a claim from the last sync
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._background = background
        self._cleaned_slot = -1
        self._last_warning = 0.0

    # --- the hot path: memory only -----------------------------------------------------------

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 if allowed (and counted), else the seconds to wait."""
        key = self._key(key)
        self._start()
        at = self._now()
        with self._lock:
            local = self._keys.pop(key, None) or _Local()
            self._keys[key] = local
            self._active.add(key)
            fresh = local.claim_slot is not None and local.claim_slot >= self._slot(at)[0] - 1
            budget = local.claim if fresh else self._allowance(key, at)
            allowed = local.used + cost <= budget + 1e-9
            if allowed:
                local.used += cost
            while len(self._keys) > self.max_clients:
                self._keys.popitem(last=False)
            seen = self._seen.get(key)
        if allowed:
            return 0.0
        if seen is None:
            return self.sync_seconds
        slot, fraction = self._slot(at)
        previous, current = (seen.current, 0.0) if seen.slot == slot - 1 else (seen.previous, seen.current)
        if seen.slot < slot - 1 or self.estimate(previous, current, fraction) + cost <= self.limit:
            return self.sync_seconds  # the cluster has room: this worker's next claim will give some
        return max(self.sync_seconds, self.wait(previous, current, fraction, cost))

    def charge(self, key: str, cost: float) -> None:
        """Count extra hits for a key (a failed lookup costs more); they come out of this worker's claim."""
        key = self._key(key)
        with self._lock:
            local = self._keys.pop(key, None) or _Local()
            self._keys[key] = local
            local.used += cost
            self._active.add(key)

    def _allowance(self, key: str, at: float) -> float:
        """What a worker may admit for a key it holds no claim for, until its next sync."""
        share = self.limit / (2 * self.workers)
        seen = self._seen.get(key)
        if seen is not None:
            slot, fraction = self._slot(at)
            if seen.slot >= slot - 1:
                previous, current = (seen.current, 0.0) if seen.slot == slot - 1 else (seen.previous, seen.current)
                share = min(share, max(0.0, self.limit - self.estimate(previous, current, fraction)) / self.workers)
        return share

    # --- the sync: one transaction every sync_seconds ------------------------------------------

    def _start(self) -> None:
        if self._thread is None and self._background:
            with self._sync_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"ratelimit-{self.scope}", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.sync_seconds):
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - the database is down or busy: keep local limits, say so now and then
                if time.monotonic() - self._last_warning > 60:
                    self._last_warning = time.monotonic()
                    log.warning("rate limit sync failed; limits are per worker until it works again",
                                extra={"scope": self.scope, "error": type(exc).__name__})

    def close(self) -> None:
        self._stop.set()

    def sync(self) -> None:
        """Give back and account the last claims, read the cluster's counts, take new claims (one transaction)."""
        with self._sync_lock:
            at = self._now()
            slot, fraction = self._slot(at)
            with self._lock:
                active, self._active = self._active, set()
                batch = {key: (local.claim, local.claim_slot, local.used, key in active)
                         for key in active | self._claimed if (local := self._keys.get(key)) is not None}
            if not batch:
                return
            served = [key for key, (_, _, _, was_served) in batch.items() if was_served]
            try:
                with self.engine.begin() as connection:
                    workers = self._heartbeat(connection, at)
                    self._account(connection, batch, slot)
                    seen = self._read(connection, served, slot)
                    claims = self._claim(connection, seen, served, slot, fraction, workers)
                    self._clean(connection, slot, at)
            except Exception:
                with self._lock:  # nothing was written: the same keys go into the next sync
                    self._active |= active
                raise
            with self._lock:
                self.workers, self._seen = workers, seen
                for key, (_, _, used, _) in batch.items():
                    local = self._keys.get(key)
                    if local is None:
                        continue
                    local.used = max(0.0, local.used - used)
                    local.claim, local.claim_slot = claims.get(key, (0.0, None))
                self._claimed = {key for key, (claim, _) in claims.items() if claim > 0}

    def _heartbeat(self, connection: Connection, at: float) -> int:
        _upsert(connection, _WORKER, [{"scope": self.scope, "worker": self.worker, "seen_at": at}], ["scope", "worker"])
        live = connection.execute(sa.select(sa.func.count()).select_from(_WORKER).where(
            _WORKER.c.scope == self.scope, _WORKER.c.seen_at > at - 3 * self.sync_seconds)).scalar_one()
        return max(self.expected, int(live))

    def _account(self, connection: Connection, batch: dict[str, tuple[float, int | None, float, bool]], slot: int) -> None:
        """Hits admitted since the last sync go into the claim's window (replacing the claim), or the current one."""
        rows = []
        for key, (claim, claim_slot, used, _) in batch.items():
            if claim_slot is None or claim_slot < slot - 1:  # no claim, or one in a window nobody reads any more
                claim_slot, claim = slot, 0.0
            if used != claim:
                rows.append({"scope": self.scope, "key": key, "slot": claim_slot, "hits": used - claim})
        _upsert(connection, _COUNT, rows, ["scope", "key", "slot"], add="hits")

    def _read(self, connection: Connection, keys: list[str], slot: int) -> dict[str, _Seen]:
        """The cluster's counts (previous and current window) of the keys this worker served, and of all heavy keys."""
        counts: dict[str, dict[int, float]] = {}
        recent = (_COUNT.c.scope == self.scope) & _COUNT.c.slot.in_([slot - 1, slot])
        queries = [sa.select(_COUNT.c.key, _COUNT.c.slot, _COUNT.c.hits).where(recent, _COUNT.c.hits >= self.limit / 4)]
        queries += [sa.select(_COUNT.c.key, _COUNT.c.slot, _COUNT.c.hits).where(recent, _COUNT.c.key.in_(part))
                    for part in _chunks(keys, 500)]
        for query in queries:
            for key, row_slot, hits in connection.execute(query):
                counts.setdefault(key, {})[row_slot] = float(hits)
        return {key: _Seen(slot, by_slot.get(slot - 1, 0.0), by_slot.get(slot, 0.0)) for key, by_slot in counts.items()}

    def _claim(self, connection: Connection, seen: dict[str, _Seen], keys: list[str], slot: int, fraction: float,
               workers: int) -> dict[str, tuple[float, int]]:
        """A share of what is left of each served key's limit, counted as used at once."""
        claims: dict[str, tuple[float, int]] = {}
        for key in keys:
            counted = seen.get(key, _Seen(slot, 0.0, 0.0))
            left = self.limit - self.estimate(counted.previous, counted.current, fraction)
            claims[key] = (max(0.0, left) / workers, slot)
        rows = [{"scope": self.scope, "key": key, "slot": slot, "hits": claim} for key, (claim, _) in claims.items() if claim > 0]
        _upsert(connection, _COUNT, rows, ["scope", "key", "slot"], add="hits")
        return claims

    def _clean(self, connection: Connection, slot: int, at: float) -> None:
        """Once per window: drop counts older than the previous window and workers gone for an hour."""
        if self._cleaned_slot == slot:
            return
        self._cleaned_slot = slot
        connection.execute(_COUNT.delete().where(_COUNT.c.scope == self.scope, _COUNT.c.slot < slot - 1))
        connection.execute(_WORKER.delete().where(_WORKER.c.scope == self.scope, _WORKER.c.seen_at < at - 3600))


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Limiter(Protocol):
    """A per-client limit: ``take`` answers 0.0 (allowed, charged) or the seconds to wait."""

    def take(self, key: str, cost: float = 1.0) -> float: ...

    def charge(self, key: str, cost: float) -> None: ...


def shared_limit(engine: Engine, settings: Settings, scope: str, rate: float, burst: int, *,
                 direct: bool = False) -> Limiter:
    """A limiter over the database, shared by all workers: batched claims, or (``direct``) one transaction per
    attempt (login and registration: rare and security-critical)."""
    if direct:
        return DirectWindows(engine, scope, rate, burst)
    return SharedWindows(engine, scope, rate, burst, sync_seconds=settings.rate_limit_sync_seconds,
                         expected_workers=settings.workers)


class TokenBuckets:
    """One process's own token buckets (tests and single-process tools): ``burst`` tokens, refilled at ``rate``/s."""

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

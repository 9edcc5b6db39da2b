"""Group commit for single issuances: concurrent requests of one caller become one batch.

A sealed issuance is bound by per-transaction and per-call costs (Vault round trips for the holder's ID,
the QR payload, the seal and the timestamp; the audit chain; the commit). When a department's system
sends many single requests at once, they queue per department and caller while a batch of theirs is being
issued, and the next batch takes all of them with :meth:`Issuer.issue_batch` in one transaction
(one Vault batch per kind of signature) and hands each waiting request its licence. When the batch fails,
the requests are issued one by one with :meth:`Issuer.issue_one` (so one bad request never fails the others,
and an Idempotency-Key that another worker committed meanwhile answers as a replay); an outage
(:class:`ServiceUnavailable`, a lost database) fails them all at once instead of retrying each.

Admission: at most ``queue_limit`` requests are in progress per process (being prepared, queued or in a batch);
the next is refused at once with :class:`IssuanceBusy` (503, Retry-After) before anything is read or written, so
its "nothing was changed" is true. At most ``concurrency`` batches run at a time, each on one pooled connection
(plus, on PostgreSQL, a short second one for serial numbers: :func:`ecert.db.claim_apart`), so the pool is never
exhausted by issuance; a waiting request holds no connection.

A database lost while the batch's COMMIT was under way leaves its fate unknown: the batch's keys are looked up
on a fresh connection, and what is found there is answered as issued; otherwise every request of the batch hears
:class:`OutcomeUnknown` (retry with the same key), never "nothing was changed".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from certificates.issuance import Actor, Issuer, Prepared
from certificates.models import Licence
from ecert.errors import OutcomeUnknown, ServiceUnavailable, commit_fate_unknown

__all__ = ["GroupCommit", "IssuanceBusy"]


class IssuanceBusy(ServiceUnavailable):
    """This server has as many issuances in progress as it admits; nothing was changed. Retry after the seconds in
    Retry-After with the same Idempotency-Key."""

    slug = "issuance-busy"
    title = "Too many issuances at once"
    retry_after = 1

T = TypeVar("T")
_OUTAGES = (ServiceUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


@dataclass(eq=False)
class _Waiting:
    prepared: Prepared
    wake: threading.Event = field(default_factory=threading.Event)  # done, or asked to lead the next batch
    lead: bool = False
    result: tuple[Licence, bool] | None = None
    error: BaseException | None = None

    @property
    def settled(self) -> bool:
        return self.result is not None or self.error is not None

    def outcome(self) -> tuple[Licence, bool]:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass(eq=False)
class _Group:
    queue: list[_Waiting] = field(default_factory=list)
    running: bool = False


class GroupCommit:
    """Issues prepared requests in batches of up to ``max_batch``, each committed in its own transaction.

    One batch per caller runs at a time in this process; requests arriving meanwhile queue, and when the
    batch is done the oldest of them leads the next batch with everything queued by then. A lone request
    is issued at once.
    """

    def __init__(self, engine: Engine, issuer: Issuer, *, max_batch: int = 32, queue_limit: int = 64,
                 concurrency: int = 4) -> None:
        self.engine = engine
        self.issuer = issuer
        self.max_batch = max_batch
        self.queue_limit = queue_limit
        self.in_progress = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], _Group] = {}
        self._batches = threading.BoundedSemaphore(concurrency)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Count one request in progress for its whole life; :class:`IssuanceBusy` at once when the queue is full."""
        with self._lock:
            if self.in_progress >= self.queue_limit:
                self.refused += 1
                raise IssuanceBusy(f"{self.in_progress} issuances are in progress on this server; nothing was changed. "
                                   "Retry with the same Idempotency-Key after Retry-After.")
            self.in_progress += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_progress -= 1

    def issue(self, actor: Actor, prepared: Prepared) -> tuple[Licence, bool]:
        """The licence for ``prepared`` (committed when this returns) and whether it was an idempotent replay."""
        me = _Waiting(prepared)
        key = (prepared.department_code, actor.subject)
        with self._lock:
            group = self._groups.setdefault(key, _Group())
            group.queue.append(me)
            if not group.running:
                group.running = me.lead = True
        while not me.settled:
            if me.lead:
                me.lead = False
                self._lead(actor, key, group)
            else:
                me.wake.wait()
                me.wake.clear()
        return me.outcome()

    def _lead(self, actor: Actor, key: tuple[str, str], group: _Group) -> None:
        self._batches.acquire()  # requests arriving meanwhile join this group's queue: the batch grows
        with self._lock:
            batch, group.queue[:] = group.queue[: self.max_batch], group.queue[self.max_batch:]
        try:
            self._run(actor, batch)
        except BaseException as exc:  # noqa: BLE001 - whatever happened, every waiting request hears of it
            for waiting in batch:
                if not waiting.settled:
                    waiting.error = exc
        finally:
            self._batches.release()
            with self._lock:
                if group.queue:  # the oldest waiting request leads the next batch
                    group.queue[0].lead = True
                    group.queue[0].wake.set()
                else:
                    group.running = False
                    self._groups.pop(key, None)
            for waiting in batch:
                waiting.wake.set()

    def _run(self, actor: Actor, batch: list[_Waiting]) -> None:
        firsts, repeats = _by_key(batch)
        try:
            licences = self._committed(firsts, lambda s: self.issuer.issue_batch(s, actor, [w.prepared for w in firsts]),
                                       lambda found: found)
            for waiting, licence in zip(firsts, licences):
                waiting.result = (licence, False)
        except _OUTAGES as exc:
            for waiting in firsts:
                waiting.error = exc
        except Exception:
            for waiting in firsts:  # one request's fault must not fail the others; a key taken meanwhile replays
                self._alone(actor, waiting)
        for repeat, first in repeats:
            repeat.result = (first.result[0], True) if first.result is not None else None
            repeat.error = first.error

    def _alone(self, actor: Actor, waiting: _Waiting) -> None:
        try:
            waiting.result = self._committed([waiting], lambda s: self.issuer.issue_one(s, actor, waiting.prepared),
                                             lambda found: (found[0], False))
        except Exception as exc:  # noqa: BLE001 - handed to the request that sent it
            waiting.error = exc

    def _committed(self, batch: list[_Waiting], work: Callable[[Session], T],
                   settled: Callable[[list[Licence]], T]) -> T:
        """``work`` in a transaction of its own, committed. When the COMMIT's fate was lost with the connection,
        the batch's licences are looked up on a fresh one: found, ``settled(them)``; else :class:`OutcomeUnknown`."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                result = work(session)
            except BaseException:
                session.rollback()
                raise
            try:
                session.commit()
            except sa.exc.DBAPIError as exc:
                with contextlib.suppress(sa.exc.DBAPIError):
                    session.rollback()
                if not commit_fate_unknown(exc):
                    raise
                return settled(self._find_committed(batch, exc))
        return result

    def _find_committed(self, batch: list[_Waiting], lost: sa.exc.DBAPIError) -> list[Licence]:
        """The batch's licences, in order, if its COMMIT went through; OutcomeUnknown when that cannot be seen."""
        keys = [w.prepared.request.idempotency_key for w in batch]
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                rows = session.exec(select(Licence).where(
                    Licence.department_code == batch[0].prepared.department_code, col(Licence.idempotency_key).in_(keys),
                )).all()
                session.expunge_all()
        except _OUTAGES:
            rows = []
        by_key = {(r.idempotency_key, r.request_fingerprint): r for r in rows}
        found = [by_key.get((w.prepared.request.idempotency_key, w.prepared.fingerprint)) for w in batch]
        if all(keys) and all(licence is not None for licence in found):
            return [licence for licence in found if licence is not None]
        raise OutcomeUnknown(
            "the database connection was lost while the licence was being saved: it may have been issued. Retry "
            "with the same Idempotency-Key to get it (or to have it issued, if it was not)"
        ) from lost


def _by_key(batch: list[_Waiting]) -> tuple[list[_Waiting], list[tuple[_Waiting, _Waiting]]]:
    """Requests to issue, and retries sent while their first copy waits in the same batch (same key and body)."""
    firsts: list[_Waiting] = []
    seen: dict[str, _Waiting] = {}
    repeats: list[tuple[_Waiting, _Waiting]] = []
    for waiting in batch:
        key = waiting.prepared.request.idempotency_key
        first = seen.get(key) if key else None
        if first is not None and first.prepared.fingerprint == waiting.prepared.fingerprint:
            repeats.append((waiting, first))
            continue
        if key and first is None:
            seen[key] = waiting
        firsts.append(waiting)
    return firsts, repeats

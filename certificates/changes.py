"""Change notices for licence records, so caches of verdicts can be exact without reading the database.

On PostgreSQL every status change sends ``NOTIFY ecert_licence_changed`` with the licence's verification
token inside the changing transaction: PostgreSQL delivers it to every listener when, and only if, the
transaction commits. A :class:`ChangeFeed` listens on a connection of its own in a daemon thread and hands
each token to a callback; on (re)connection and on loss it calls back with ``None`` ("forget everything"),
because notices sent while nobody listened are gone. SQLite has no notices: :func:`feed_for` gives None there
and readers check the record's version instead.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

__all__ = ["CHANNEL", "announce", "subscribe", "ChangeFeed", "feed_for"]

log = logging.getLogger(__name__)

CHANNEL = "ecert_licence_changed"
_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL}', :token)")
_PENDING = "ecert.licence_changes"
_HOOKED = "ecert.licence_changes_hooked"
_LOCAL: list[tuple[weakref.ref[Any], Callable[[Any, str | None], None]]] = []
_LOCAL_LOCK = threading.Lock()


def announce(session: Session, token: str) -> None:
    """Tell listeners, when this transaction commits, that the licence behind ``token`` changed.

    Subscribers in this process hear it synchronously at commit (so a request that changed a licence answers
    only after this process's caches dropped it); other processes through PostgreSQL's notice.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"token": token})
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        sa.event.listen(session, "after_commit", _tell_local)
        sa.event.listen(session, "after_transaction_create", _drop_pending)
    session.info.setdefault(_PENDING, set()).add(token)


def subscribe(owner: Any, callback: Callable[[Any, str | None], None]) -> None:
    """Call ``callback(owner, token)`` for every change committed in this process while ``owner`` lives."""
    with _LOCAL_LOCK:
        _LOCAL[:] = [(ref, cb) for ref, cb in _LOCAL if ref() is not None]
        _LOCAL.append((weakref.ref(owner), callback))


def _tell_local(session: Session) -> None:
    tokens = session.info.pop(_PENDING, set())
    with _LOCAL_LOCK:
        listeners = [(ref(), cb) for ref, cb in _LOCAL]
    for owner, callback in listeners:
        if owner is not None:
            for token in tokens:
                callback(owner, token)


def _drop_pending(session: Session, transaction: Any) -> None:
    """A new outermost transaction: changes announced in one that rolled back never happened."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


class ChangeFeed:
    """Listens for licence change notices; ``live`` while its connection listens.

    The callback owner is held weakly: when it is garbage collected the thread closes its connection and ends
    (apps built and dropped by tests leak no listeners); :meth:`stop` ends it explicitly.
    """

    def __init__(self, engine: Engine, owner: Any, callback: Callable[[Any, str | None], None], *,
                 poll_seconds: float = 1.0, retry_seconds: float = 1.0) -> None:
        self._engine = engine
        self._owner = weakref.ref(owner)
        self._callback = callback
        self._poll = poll_seconds
        self._retry = retry_seconds
        self._stop = threading.Event()
        self._live = threading.Event()
        self._thread = threading.Thread(target=self._run, name="licence-change-feed", daemon=True)

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def start(self) -> ChangeFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait_live(self, timeout: float) -> bool:
        return self._live.wait(timeout)

    def _tell(self, token: str | None) -> bool:
        owner = self._owner()
        if owner is None:
            return False
        self._callback(owner, token)
        return True

    def _run(self) -> None:
        while not self._stop.is_set() and self._owner() is not None:
            try:
                self._listen()
            except Exception as exc:  # noqa: BLE001 - the database went away: forget everything, retry
                log.warning("licence change feed lost its connection; verdicts are read from the database",
                            extra={"error": type(exc).__name__})
                self._tell(None)  # no longer live (``_listen`` cleared it): what was vouched for may be stale
            self._stop.wait(self._retry)

    def _listen(self) -> None:
        pooled = self._engine.raw_connection()
        connection: Any = pooled.driver_connection  # psycopg's Connection; SQLAlchemy types it Any | None
        pooled.detach()  # a connection of its own, never returned to the pool
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            if not self._tell(None):  # notices sent before we listened are lost: start clean
                return
            self._live.set()
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=self._poll):
                    if not self._tell(notice.payload):
                        return
                if self._owner() is None:
                    return
        finally:
            self._live.clear()
            connection.close()


def feed_for(engine: Engine, owner: Any, callback: Callable[[Any, str | None], None]) -> ChangeFeed | None:
    """A started feed on PostgreSQL; None on backends without notices."""
    if engine.dialect.name != "postgresql":
        return None
    return ChangeFeed(engine, owner, callback).start()

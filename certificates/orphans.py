"""Orphan blobs: PDFs written by an issuance whose transaction then rolled back, so no licence names them.

The filesystem and S3 stores write before the commit (never a licence without its PDF), so a failed
commit leaves such a blob behind. It is harmless (nothing serves it) and is collected here: a blob is
an orphan when no ``licence.pdf_blob_key`` names it and it is older than ``before`` (choose a cut-off
well past any transaction in flight). The database store needs none of this: its blobs live and die
with the issuing transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit.trail import record_event
from certificates.models import Licence
from ecert.db import session_scope

__all__ = ["ListableStore", "Orphan", "find_orphans", "collect_orphans"]

_CHUNK = 500


@runtime_checkable
class ListableStore(Protocol):
    def entries(self, under: str = "") -> Iterator[tuple[str, dt.datetime]]: ...

    def delete(self, session: Session, key: str) -> None: ...


@dataclass(frozen=True)
class Orphan:
    key: str
    modified: dt.datetime


def _chunks(items: Iterable[tuple[str, dt.datetime]]) -> Iterator[list[tuple[str, dt.datetime]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk


def find_orphans(session: Session, store: ListableStore, *, before: dt.datetime) -> list[Orphan]:
    """Blobs under ``licences/`` last written before ``before`` that no licence row names."""
    found: list[Orphan] = []
    for chunk in _chunks(e for e in store.entries("licences/") if e[1] < before):
        keys = [key for key, _ in chunk]
        named = set(session.exec(select(Licence.pdf_blob_key).where(col(Licence.pdf_blob_key).in_(keys))).all())
        found.extend(Orphan(key, modified) for key, modified in chunk if key not in named)
    return found


def collect_orphans(engine: Engine, store: ListableStore, *, before: dt.datetime, actor: str) -> list[Orphan]:
    """Delete the orphans :func:`find_orphans` names, one transaction each with its audit event; the ones deleted."""
    with Session(engine) as session:
        orphans = find_orphans(session, store, before=before)
    deleted = []
    for orphan in orphans:
        with session_scope(engine) as session:
            if session.exec(select(Licence.id).where(Licence.pdf_blob_key == orphan.key)).first() is not None:
                continue  # named since it was listed: not an orphan after all
            record_event(session, action="certificates.blob.collect", actor=actor, target=f"blob:{orphan.key}",
                         details={"modified": orphan.modified.isoformat()})
            store.delete(session, orphan.key)  # fails -> the audit event rolls back with it
        deleted.append(orphan)
    return deleted

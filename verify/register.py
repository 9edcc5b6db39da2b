"""The register as link verification reads it: a licence with its successor's token, its history and the lower
part of its inclusion proof (:meth:`audit.tlog.InclusionProver.columns`), in one prepared statement on the driver
(:class:`ecert.db.DriverReads`), as a :class:`RegisterRecord`.

A public lookup across millions of licences is mostly a first sight, so this read skips the ORM: the same
statement through SQLAlchemy's ORM costs about twice the client CPU of the query itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from audit.tlog import InclusionProver
from certificates.models import Licence, LicenceEvent
from ecert.clock import as_utc
from ecert.db import DriverReads
from verify.model import HistoryEntry

__all__ = ["Register", "RegisterRecord"]

_LICENCE = ("id", "number", "type_code", "type_version", "department_code", "holder_kind", "holder_name",
            "holder_id_cipher", "fields", "fields_digest", "status", "status_reason", "status_effective_at",
            "valid_from", "valid_until", "issued_at", "updated_at", "superseded_by_id", "associated_number",
            "pdf_sha256", "log_index")
_EVENT = ("action", "from_status", "to_status", "reason", "effective_at")


@dataclass(frozen=True, slots=True)
class RegisterRecord:
    """What a verdict shows of a licence (the attributes of :class:`~certificates.models.Licence` it reads)."""

    id: str
    number: str
    type_code: str
    type_version: int
    department_code: str
    holder_kind: str
    holder_name: str
    holder_id_cipher: str
    fields: dict[str, Any]
    fields_digest: str
    status: str
    status_reason: str | None
    status_effective_at: dt.datetime | None
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    issued_at: dt.datetime
    updated_at: dt.datetime
    superseded_by_id: str | None
    associated_number: str | None
    pdf_sha256: str | None
    log_index: int | None
    successor_token: str | None
    history: tuple[HistoryEntry, ...]
    lower_proof: tuple[bytes | None, ...] | None = None  # read with the record: InclusionProver.columns(log_index)

    @property
    def version(self) -> tuple[str, str]:
        """What a remembered verdict is checked against: every status change and amendment bumps ``updated_at``."""
        return as_utc(self.updated_at).isoformat(), self.department_code


def _entry(action: str, from_status: str | None, to_status: str, reason: str | None, at: Any) -> HistoryEntry:
    return HistoryEntry(action, from_status, to_status, reason, as_utc(at))


class Register:
    """Reads for link verification: :meth:`records` of a batch of tokens (:meth:`record` of one)."""

    def __init__(self, engine: Engine, prover: InclusionProver) -> None:
        self.reads = DriverReads(engine)
        self._proof_width = prover.width
        licence, event = Licence.__table__.c, LicenceEvent.__table__.c  # type: ignore[attr-defined]  # set on table models; SQLModel does not declare it
        self._record = self.reads.statement(
            f"SELECT {', '.join('l.' + name for name in _LICENCE)}, s.token, {prover.columns('l.log_index')}, "
            f"{', '.join('e.' + name for name in _EVENT)}, l.token "
            "FROM licence l LEFT JOIN licence s ON s.id = l.superseded_by_id "
            "LEFT JOIN licence_event e ON e.licence_id = l.id WHERE " + self.reads.any_of("l.token", "tokens") + " ORDER BY e.id")
        self._record_types = self.reads.converters(
            [licence[name].type for name in _LICENCE] + [licence.token.type] + [None] * prover.width
            + [event[name].type for name in _EVENT] + [None])

    def record(self, token: str) -> RegisterRecord | None:
        return self.records([token]).get(token)

    def records(self, tokens: list[str]) -> dict[str, RegisterRecord]:
        """The records of those tokens that name a licence, by token, in one statement."""
        width = len(_LICENCE)
        events = width + 1 + self._proof_width
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for raw in self.reads.rows(self._record, {"tokens": self.reads.values(tokens)}):
            row = _converted(raw, self._record_types)
            rows.setdefault(row[-1], []).append(row)  # the last column is the token asked for
        found = {}
        for token, group in rows.items():
            first = group[0]
            history = tuple(_entry(*row[events:-1]) for row in group if row[events] is not None)
            found[token] = RegisterRecord(**dict(zip(_LICENCE, first[:width])), successor_token=first[width], history=history,
                                          lower_proof=first[width + 1:events] if first[width + 1] else None)
        return found


def _converted(row: tuple[Any, ...], converters: list[Any]) -> tuple[Any, ...]:
    return tuple(value if convert is None or value is None else convert(value) for value, convert in zip(row, converters))

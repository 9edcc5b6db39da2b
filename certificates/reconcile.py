"""Reconciliation: every licence's current state against its history, its audit events and its transparency leaf.

Each of those is written in the issuing or changing transaction, so they always agree unless something changed the
database outside ecert (a status edited in the table, an event deleted, a leaf altered). The audit trail's hash
chain (:mod:`audit.integrity`) proves the trail itself is intact; this proves the *tables* still say what the trail
and the log recorded. For each licence:

* **history**: starts with ``issue`` (or ``import``) to valid; each change starts from the status the previous one
  reached; effective dates never go back; the last one is the licence's status, reason and effective date;
* **audit**: the licence's audit events (target ``licence:<id>``), in order, are the same actions as its history,
  with the same from/to statuses;
* **transparency**: the leaf at ``log_index`` is an "issued" entry for this licence number, committing to its
  sealed PDF (or content digest) and issuance time; a superseded licence also has its "superseded" entry.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from audit.models import AuditEvent, TlogLeaf
from audit.treehead import LeafEntry, LeafKind, number_hash
from certificates.issuance import transparency_digest
from certificates.models import Licence, LicenceEvent
from ecert.clock import as_utc

__all__ = ["Mismatch", "ReconcileReport", "reconcile"]

_FIRST = ("issue", "import")


@dataclass(frozen=True)
class Mismatch:
    licence_id: str
    number: str
    kind: str  # history | audit | transparency
    detail: str


@dataclass
class ReconcileReport:
    licences: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "licences": self.licences,
                "mismatches": [m.__dict__ for m in self.mismatches]}


def reconcile(session: Session, *, department_code: str | None = None, batch: int = 500) -> ReconcileReport:
    """Check every licence (or one department's), in batches of ``batch``; read only."""
    report = ReconcileReport()
    for licences in _batches(session, batch, department_code):
        ids = [licence.id for licence in licences]
        events = _grouped(session.exec(select(LicenceEvent).where(col(LicenceEvent.licence_id).in_(ids))
                                       .order_by(col(LicenceEvent.id))).all(), lambda e: e.licence_id)
        targets = [f"licence:{i}" for i in ids]
        audits = _grouped(session.exec(select(AuditEvent).where(col(AuditEvent.target).in_(targets))
                                       .where(col(AuditEvent.action).startswith("certificates.licence."))
                                       .order_by(col(AuditEvent.seq))).all(), lambda a: (a.target or "")[8:])
        indexes = [licence.log_index for licence in licences if licence.log_index is not None]
        leaves = {leaf.idx: leaf for leaf in session.exec(select(TlogLeaf).where(col(TlogLeaf.idx).in_(indexes))).all()}
        superseded = _superseded_leaves(session, [licence for licence in licences if licence.status == "superseded"])
        for licence in licences:
            report.licences += 1
            found = [*_history(licence, events.get(licence.id, [])),
                     *_audit(events.get(licence.id, []), audits.get(licence.id, [])),
                     *_leaf(licence, leaves.get(licence.log_index) if licence.log_index is not None else None,
                            superseded)]
            report.mismatches += [Mismatch(licence.id, licence.number, kind, detail) for kind, detail in found]
    return report


def _batches(session: Session, size: int, department_code: str | None) -> Iterator[list[Licence]]:
    after = ""
    while True:
        query = select(Licence).where(col(Licence.id) > after)
        if department_code is not None:
            query = query.where(Licence.department_code == department_code)
        rows = list(session.exec(query.order_by(col(Licence.id)).limit(size)).all())
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _grouped(rows: Sequence[Any], key: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out


def _history(licence: Licence, events: list[LicenceEvent]) -> Iterator[tuple[str, str]]:
    if not events or events[0].action not in _FIRST or events[0].from_status is not None or events[0].to_status != "valid":
        yield "history", "the history does not start with the licence's issuance"
        return
    for before, after in zip(events, events[1:]):
        if after.from_status != before.to_status:
            yield "history", f"{after.action} (event {after.id}) starts from {after.from_status}, not {before.to_status}"
        if as_utc(after.effective_at) < as_utc(before.effective_at):
            yield "history", f"{after.action} (event {after.id}) is effective before the change before it"
    last = events[-1]
    if last.to_status != licence.status:
        yield "history", f"the licence is {licence.status} but its history ends {last.to_status}"
    if len(events) > 1:
        if licence.status_effective_at is None or as_utc(licence.status_effective_at) != as_utc(last.effective_at):
            yield "history", "the status's effective date is not the last change's"
        if (licence.status_reason or None) != (last.reason or None):
            yield "history", "the status reason is not the last change's"


def _audit(events: list[LicenceEvent], audits: list[AuditEvent]) -> Iterator[tuple[str, str]]:
    expected: list[tuple[str, str | None, str | None]] = [
        ("issue" if e.action in _FIRST else e.action, e.from_status, e.to_status) for e in events]
    recorded: list[tuple[str, str | None, str | None]] = []
    for audit in audits:
        action = audit.action.removeprefix("certificates.licence.")
        if action == "issue":
            recorded.append((action, None, "valid"))
        else:
            recorded.append((action, audit.details.get("from"), audit.details.get("to")))
    if recorded != expected:
        yield "audit", f"the audit trail records {_names(recorded)}, the history {_names(expected)}"


def _names(changes: list[tuple[str, str | None, str | None]]) -> str:
    return ", ".join(f"{action}->{to}" for action, _, to in changes) or "nothing"


def _ms(at: dt.datetime) -> int:
    return int(as_utc(at).timestamp() * 1000)


def _leaf(licence: Licence, leaf: TlogLeaf | None, superseded: set[bytes]) -> Iterator[tuple[str, str]]:
    if licence.log_index is None:
        return  # issued before the index was kept; the log itself is checked by ``ecert transparency audit``
    if leaf is None:
        yield "transparency", f"no leaf at log index {licence.log_index}"
        return
    entry = LeafEntry(LeafKind.ISSUED, _ms(licence.issued_at), transparency_digest(licence), number_hash(licence.number))
    stored = (leaf.kind, leaf.timestamp, bytes(leaf.cert_digest), bytes(leaf.number_hash), bytes(leaf.leaf_hash))
    if stored != (int(entry.kind), entry.timestamp, entry.cert_digest, entry.number_hash, entry.leaf_hash):
        yield "transparency", f"the leaf at log index {licence.log_index} does not commit to this licence as issued"
    if licence.status == "superseded" and number_hash(licence.number) not in superseded:
        yield "transparency", "the licence is superseded but the log has no superseded entry for it"


def _superseded_leaves(session: Session, licences: list[Licence]) -> set[bytes]:
    if not licences:
        return set()
    hashes = [number_hash(licence.number) for licence in licences]
    rows = session.exec(select(TlogLeaf).where(col(TlogLeaf.number_hash).in_(hashes),
                                               TlogLeaf.kind == int(LeafKind.SUPERSEDED))).all()
    return {bytes(row.number_hash) for row in rows if bytes(row.leaf_hash) == LeafEntry(
        LeafKind.SUPERSEDED, int(row.timestamp), bytes(row.cert_digest), bytes(row.number_hash)).leaf_hash}

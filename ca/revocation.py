"""Revoking certificates with RFC 5280 reasons (revocation is final: no certificateHold here)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from cryptography import x509
from sqlmodel import Session, col

from audit.trail import record_event
from ca.errors import AlreadyRevoked, InvalidRevocationReason, UnknownCertificate
from ca.models import CrlRecord, IssuedCertificate
from ecert.clock import as_utc
from ecert.errors import InvalidInput

__all__ = ["REASONS", "parse_reason", "revoke", "mark_crl_stale"]

#: RFC 5280 CRLReason names this CA accepts (certificateHold and removeFromCRL are not offered).
REASONS: dict[str, x509.ReasonFlags] = {
    flag.value: flag
    for flag in (
        x509.ReasonFlags.unspecified, x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise,
        x509.ReasonFlags.affiliation_changed, x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.privilege_withdrawn,
    )
}


def parse_reason(name: str) -> x509.ReasonFlags:
    """``keyCompromise`` (RFC 5280 spelling) or ``key_compromise`` to a reason flag."""
    for flag in REASONS.values():
        if name in (flag.value, flag.name):
            return flag
    raise InvalidRevocationReason(f"unknown revocation reason {name!r}; use one of {', '.join(REASONS)}")


def mark_crl_stale(session: Session, issuer: str) -> None:
    """Make the next CRL request rebuild ``issuer``'s CRL (in the revoking transaction)."""
    updated = session.execute(
        sa.update(CrlRecord).where(col(CrlRecord.issuer) == issuer).values(changes=col(CrlRecord.changes) + 1)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult; sqlmodel types it Result
        session.add(CrlRecord(issuer=issuer))
        session.flush()


def revoke(
    session: Session, serial: str, reason: str, *, actor: str, now: dt.datetime,
    invalidity_date: dt.datetime | None = None, department: str | None = None,
) -> IssuedCertificate:
    """Revoke a certificate; ``department`` (when given) must own it. Revoking twice is a conflict."""
    flag = parse_reason(reason)
    serial = serial.lower().lstrip("0") or "0"
    row = session.get(IssuedCertificate, serial, with_for_update=True)
    if row is None or (department is not None and row.department_code != department):
        raise UnknownCertificate(f"no certificate with serial {serial}")
    if row.revoked_at is not None:
        raise AlreadyRevoked(f"certificate {serial} is already revoked (since {as_utc(row.revoked_at).isoformat()})")
    if invalidity_date is not None and (invalidity_date.tzinfo is None or invalidity_date > now):
        raise InvalidInput("the invalidity date must be a timezone-aware time that is not in the future")
    row.revoked_at = now
    row.revocation_reason = flag.value
    row.invalidity_date = invalidity_date
    session.add(row)
    mark_crl_stale(session, row.issuer)
    record_event(
        session, action="ca.certificate.revoked", actor=actor, target=f"cert:{serial}", department=row.department_code,
        details={"reason": flag.value, "profile": row.profile, "issuer": row.issuer,
                 **({"invalidity_date": invalidity_date.isoformat()} if invalidity_date else {})},
        at=now,
    )
    return row

"""Identified verification: a verdict shown to a known checker is recorded in the holder's access log.

The verdict itself is the public one (the type's disclosure policy, holder masked by default), so
an identified checker sees no more than anyone else; what they saw is written with
:func:`certificates.access_log.record_access` in the caller's transaction, and the answer is sent
only after that commits. A verdict that names no licence (not found, unregistered PDF) records nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from certificates import records
from certificates.access_log import Checker, Purpose, disclosed_in_view, record_access
from certificates.models import Licence, LicenceAccess
from verify.model import Verdict

__all__ = ["record_verdict"]


def _licence_of(session: Session, verdict: Verdict, token: str | None) -> Licence | None:
    if verdict.licence is None:
        return None
    if token is not None:
        return records.get_by_token(session, token)
    return session.exec(select(Licence).where(Licence.number == verdict.licence.number)).first()


def record_verdict(
    session: Session, verdict: Verdict, *, checker: Checker, purpose: Purpose, channel: str, now: dt.datetime,
    token: str | None = None,
) -> LicenceAccess | None:
    """Record what ``verdict`` disclosed to ``checker`` (found by ``token``, else by the summary's number)."""
    licence = _licence_of(session, verdict, token)
    if licence is None or verdict.licence is None or licence.number != verdict.licence.number:
        return None
    disclosed = disclosed_in_view(licence, verdict.licence.holder, verdict.licence.fields)
    return record_access(session, licence=licence, checker=checker, purpose=purpose, channel=channel, disclosed=disclosed,
                         now=now)

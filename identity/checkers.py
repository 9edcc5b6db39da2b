"""Who is checking: the identified party behind an access token, as a :class:`certificates.access_log.Checker`.

A department client (client credentials) checks as its department; a platform administrator
client as ``platform``; a platform app (OpenID Connect relying party) acting with a person's
token as the app; a counter staff member as themself at their hall.
"""

from __future__ import annotations

from sqlmodel import Session

from certificates.access_log import Checker
from ecert.errors import Forbidden
from identity.models import Account, ApiClient, RelyingParty, StaffMember

__all__ = ["UnknownChecker", "checker_for", "staff_checker"]


class UnknownChecker(Forbidden):
    """The token names no active client, app or staff member that may check licences."""

    slug = "unknown-checker"
    title = "The caller cannot be identified as a checker"


def staff_checker(session: Session, member: StaffMember) -> Checker:
    account = session.get(Account, member.account_id)
    return Checker("staff", member.account_id, account.name if account is not None else member.account_id, member.hall)


def checker_for(session: Session, *, kind: str, subject: str, client_id: str | None, department: str | None) -> Checker:
    """The checker for a verified token's facts (``Principal`` kind, subject, client and department)."""
    if kind in ("client", "admin"):
        client = session.get(ApiClient, subject)
        if client is None or client.disabled_at is not None:
            raise UnknownChecker("the API client is unknown or disabled")
        return Checker("department", client.client_id, client.name, department or client.department_code or "platform")
    if kind == "staff":
        member = session.get(StaffMember, subject)
        if member is None:
            raise UnknownChecker("not a counter staff member")
        return staff_checker(session, member)
    party = session.get(RelyingParty, client_id) if client_id else None
    if party is None or party.disabled_at is not None:
        raise UnknownChecker("the token was not issued to an active platform app")
    return Checker("app", party.client_id, party.name)

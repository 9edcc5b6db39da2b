"""Standing consents: a holder lets a platform app use scopes beyond sign-in, until they revoke it.

``openid`` and ``profile`` need no consent (registered apps are first-party for signing in);
any other scope an app asks for (``licences:own``) is shown on the consent screen and, once
granted, remembered in :class:`identity.models.Consent`. Revoking ends the app's refresh tokens
for the account at once, and every read under the consent checks it is still live
(:func:`require`), so access tokens already issued stop working too.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from audit.trail import record_event
from certificates.access_log import Checker, Purpose, disclosed_in_view, parse_purpose, record_access
from certificates.disclosure import public_view
from certificates.models import Licence, LicenceType
from ecert.errors import EcertError, Forbidden, NotFound
from identity import accounts
from identity.models import Account, Consent, RefreshToken, RelyingParty
from identity.scopes import format_scopes, parse_scopes

__all__ = ["FREE_SCOPES", "ConsentRequired", "UnknownConsent", "ConsentView", "purpose_of", "live", "needed", "grant",
           "revoke", "list_for_account", "require", "read_licences", "LICENCES_SCOPE"]

FREE_SCOPES = frozenset({"openid", "profile"})
LICENCES_SCOPE = "licences:own"


class ConsentRequired(Forbidden):
    """The holder has not granted this app the scope, or has revoked the grant."""

    slug = "consent-required"
    title = "The holder has not granted (or has revoked) this app's access"


class UnknownConsent(NotFound):
    slug = "unknown-consent"
    title = "No such consent of yours"


@dataclass(frozen=True)
class ConsentView:
    id: str
    client_id: str
    app_name: str
    scopes: tuple[str, ...]
    purpose: Purpose
    granted_at: dt.datetime
    revoked_at: dt.datetime | None


def purpose_of(party: RelyingParty) -> Purpose:
    """The app's registered purpose, or "at the holder's own request" when it declared none."""
    try:
        return parse_purpose(party.purpose)
    except EcertError:
        return Purpose("holder-request")


def live(session: Session, account_id: str, client_id: str) -> Consent | None:
    query = select(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id,
                                  col(Consent.revoked_at).is_(None))
    return session.exec(query.order_by(col(Consent.granted_at).desc())).first()


def needed(session: Session, account_id: str, client_id: str, scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes that need consent and are not covered by a live grant (empty: nothing to ask)."""
    wanted = tuple(s for s in dict.fromkeys(scopes) if s not in FREE_SCOPES)
    if not wanted:
        return ()
    row = live(session, account_id, client_id)
    granted = set(parse_scopes(row.scopes)) if row is not None else set()
    return tuple(s for s in wanted if s not in granted)


def grant(session: Session, party: RelyingParty, *, account_id: str, scopes: Iterable[str], now: dt.datetime) -> Consent:
    """Remember the holder's grant (widening a live one); audited ``identity.consent.grant``."""
    wanted = [s for s in dict.fromkeys(scopes) if s not in FREE_SCOPES]
    row = live(session, account_id, party.client_id)
    purpose = purpose_of(party)
    if row is None:
        row = Consent(id="con_" + secrets.token_hex(10), account_id=account_id, client_id=party.client_id, scopes="",
                      purpose=purpose.code, purpose_text=purpose.text, granted_at=now)
    row.scopes = format_scopes([*parse_scopes(row.scopes), *wanted])
    row.granted_at = now
    session.add(row)
    session.flush()
    record_event(session, action="identity.consent.grant", actor=f"account:{account_id}", target=f"client:{party.client_id}",
                 details={"consent": row.id, "scopes": wanted, "purpose": purpose.code}, at=now)
    return row


def revoke(session: Session, *, account_id: str, consent_id: str, now: dt.datetime) -> Consent:
    """End the holder's own consent and the app's refresh tokens for them; audited ``identity.consent.revoke``."""
    row = session.get(Consent, consent_id, with_for_update=True)
    if row is None or row.account_id != account_id:
        raise UnknownConsent("no such consent of yours")
    if row.revoked_at is not None:
        return row
    row.revoked_at, row.revoked_by = now, f"account:{account_id}"
    session.add(row)
    ended = 0
    for token in session.exec(select(RefreshToken).where(RefreshToken.account_id == account_id,
                                                         RefreshToken.client_id == row.client_id,
                                                         col(RefreshToken.revoked_at).is_(None))):
        token.revoked_at, ended = now, ended + 1
        session.add(token)
    session.flush()
    record_event(session, action="identity.consent.revoke", actor=f"account:{account_id}", target=f"client:{row.client_id}",
                 details={"consent": row.id, "refresh_tokens_ended": ended}, at=now)
    return row


def list_for_account(session: Session, account_id: str) -> list[ConsentView]:
    """The holder's consents (live first, newest first), with the apps' names."""
    query = select(Consent, RelyingParty.name).join(RelyingParty, col(RelyingParty.client_id) == Consent.client_id, isouter=True)
    query = query.where(Consent.account_id == account_id)
    rows = session.exec(query.order_by(col(Consent.granted_at).desc())).all()
    views = [ConsentView(c.id, c.client_id, name or c.client_id, parse_scopes(c.scopes), Purpose(c.purpose, c.purpose_text),
                         c.granted_at, c.revoked_at) for c, name in rows]
    return sorted(views, key=lambda v: v.revoked_at is not None)


def require(session: Session, *, account_id: str, client_id: str | None, scope: str) -> Consent:
    """The live consent that lets ``client_id`` use ``scope`` for the account, else :class:`ConsentRequired`."""
    row = live(session, account_id, client_id) if client_id else None
    if row is None or scope not in parse_scopes(row.scopes):
        raise ConsentRequired(f"the holder has not granted this app {scope!r}, or has revoked it")
    return row


def _types_of(session: Session, licences: list[Licence]) -> dict[tuple[str, str, int], LicenceType | None]:
    """The type version of each licence, one query per distinct type (a holder's licences share few)."""
    keys = {(lic.department_code, lic.type_code, lic.type_version) for lic in licences}
    return {key: session.exec(select(LicenceType).where(
        LicenceType.department_code == key[0], LicenceType.code == key[1], LicenceType.version == key[2])).first()
        for key in keys}


def read_licences(session: Session, *, account_id: str, client_id: str | None, now: dt.datetime,
                  limit: int = 100) -> list[dict[str, Any]]:
    """The holder's licences as an app with a live ``licences:own`` consent may see them (each public view is
    what the licence type discloses, never more), every one recorded in the holder's access log."""
    consent = require(session, account_id=account_id, client_id=client_id, scope=LICENCES_SCOPE)
    party = session.get(RelyingParty, consent.client_id)
    account = session.get(Account, account_id)
    if party is None or party.disabled_at is not None or account is None or account.disabled_at is not None:
        raise ConsentRequired("the app or the account is no longer active")
    checker = Checker("app", party.client_id, party.name)
    purpose = Purpose(consent.purpose, consent.purpose_text)
    views = []
    licences = accounts.licences_of(session, account, limit=limit)
    types = _types_of(session, licences)
    for licence in licences:
        view = public_view(licence, types[(licence.department_code, licence.type_code, licence.type_version)], now=now)
        record_access(session, licence=licence, checker=checker, purpose=purpose, channel="api-consent",
                      disclosed=disclosed_in_view(licence, view["holder"], view["fields"]), now=now)
        views.append({**view, "verification_token": licence.token})
    return views

"""In-person service at a counter: staff, the citizen's counter QR, visits, proofing and consent.

The counter QR is a short-lived JWT (``typ`` ``counter+jwt``, 2 minutes) signed by the token
key in Vault, naming the account and the portal session's ``acr``; it carries no ID number.
A counter terminal checks it online (:func:`start_visit_by_qr`: the ``jti`` is stored unique,
so a QR starts one visit only, bound to the scanning staff member's hall session) or offline
with cached JWKS (:class:`OfflineQrVerifier`, which remembers the ``jti`` values it has seen).
An applicant without a phone is found by the document the staff member checks in person.
With the applicant's consent (ticked when showing the QR, or recorded by staff) the visit may
read their e-licences until it ends or expires.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jose import jwk, jws
from jose.exceptions import JOSEError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from audit.trail import record_event
from certificates.access_log import Disclosed, record_access, parse_purpose
from certificates.holders import HolderKind, PiiVault, normalise_holder_id
from certificates.models import Licence
from ecert.clock import as_utc
from ecert.errors import Conflict, Forbidden, InvalidInput, NotFound
from identity import accounts
from identity.checkers import staff_checker
from identity.models import Account, CounterVisit, LoginSession, StaffMember
from identity.tokens import ALGORITHM, AccessTokens, InvalidToken

__all__ = [
    "QR_TYPE",
    "QR_LIFETIME",
    "ROLES",
    "CounterQr",
    "QrClaims",
    "QrRejected",
    "VisitClosed",
    "NoConsent",
    "NotStaff",
    "OfflineQrVerifier",
    "add_staff",
    "staff_of",
    "issue_qr",
    "check_qr",
    "start_visit_by_qr",
    "start_visit_by_document",
    "proof_in_person",
    "record_consent",
    "visit_licences",
    "end_visit",
    "get_visit",
]

QR_TYPE = "counter+jwt"
QR_LIFETIME = dt.timedelta(minutes=2)
VISIT_LIFETIME = dt.timedelta(minutes=30)
ROLES = ("counter", "supervisor")


class QrRejected(InvalidInput):
    """The counter QR is forged, expired, for another service or already used."""

    slug = "counter-qr-rejected"
    title = "The counter QR is not valid"


class VisitClosed(Conflict):
    slug = "counter-visit-closed"
    title = "The visit has ended"


class NoConsent(Forbidden):
    """The applicant has not consented to this visit reading their e-licences."""

    slug = "counter-no-consent"
    title = "No consent to read e-licences"


class NotStaff(Forbidden):
    """The account is not counter staff, or lacks the role."""

    slug = "not-counter-staff"
    title = "Counter staff only"


@dataclass(frozen=True)
class CounterQr:
    token: str
    jti: str
    expires_at: dt.datetime

    def __repr__(self) -> str:
        return f"CounterQr(jti={self.jti})"


@dataclass(frozen=True)
class QrClaims:
    account_id: str
    name: str
    acr: str
    jti: str
    expires_at: dt.datetime
    consent: bool


def _audience(issuer: str) -> str:
    return issuer + "/counter"


def add_staff(
    session: Session, pii: PiiVault, *, username: str, name: str, id_number: str, password: str, roles: Sequence[str],
    hall: str, actor: str, now: dt.datetime,
) -> str:
    """A staff account (its own login by username, apart from any citizen account of the same person)."""
    username = username.strip().lower()
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(username) > 64:
        raise InvalidInput("username: letters, digits, - _ . (up to 64)")
    if not roles or any(r not in ROLES for r in roles) or not hall.strip():
        raise InvalidInput(f"staff need roles among {', '.join(ROLES)} and a service hall")
    if session.exec(select(Account.id).where(Account.username == username)).first():
        raise accounts.AccountExists(f"username {username} is taken")
    row = accounts.new_account(session, pii, kind="staff", name=name, id_number=id_number, phone=None, password=password,
                                now=now, username=username)
    session.add(StaffMember(account_id=row.id, roles=" ".join(dict.fromkeys(roles)), hall=hall.strip(), added_at=now, added_by=actor))
    session.flush()
    record_event(session, action="identity.staff.add", actor=actor, target=f"account:{row.id}",
                 details={"username": username, "roles": list(roles), "hall": hall}, at=now)
    return row.id


def staff_of(session: Session, login: LoginSession, *, role: str = "counter") -> StaffMember:
    """The staff member behind a (staff) login session, if they hold ``role``; else NotStaff."""
    member = session.get(StaffMember, login.account_id)
    if member is None or role not in member.roles.split():
        raise NotStaff(f"this needs the counter role {role!r}")
    return member


def issue_qr(session: Session, tokens: AccessTokens, login: LoginSession, *, consent: bool, now: dt.datetime) -> CounterQr:
    """A counter QR for the holder of a (citizen) portal session; audited as a token issue."""
    account = session.get(Account, login.account_id)
    assert account is not None
    acr = accounts.ACR_IN_PERSON if account.assurance == accounts.ACR_IN_PERSON and login.acr == accounts.ACR_TOTP else login.acr
    issued = int(now.timestamp())
    claims = {"iss": tokens.issuer, "aud": _audience(tokens.issuer), "sub": account.id, "name": account.name, "acr": acr,
              "iat": issued, "exp": issued + int(QR_LIFETIME.total_seconds()), "jti": uuid.uuid4().hex, "sid": login.id,
              "consent": bool(consent)}
    token = tokens.sign(claims, QR_TYPE)
    record_event(session, action="identity.token.issue", actor=f"account:{account.id}", target=f"account:{account.id}",
                 details={"jti": claims["jti"], "grant": "counter-qr", "acr": acr, "consent": bool(consent)}, at=now)
    return CounterQr(token, str(claims["jti"]), now + QR_LIFETIME)


def _claims(raw: Mapping[str, Any], issuer: str, now: dt.datetime, leeway: int = 5) -> QrClaims:
    at = int(now.timestamp())
    exp = raw.get("exp")
    if raw.get("iss") != issuer or raw.get("aud") != _audience(issuer) or not isinstance(exp, int):
        raise QrRejected("this is not an ecert counter QR")
    if exp + leeway <= at:
        raise QrRejected("the QR has expired: ask the applicant to refresh it")
    if not isinstance(raw.get("sub"), str) or not isinstance(raw.get("jti"), str):
        raise QrRejected("this is not an ecert counter QR")
    return QrClaims(raw["sub"], str(raw.get("name", "")), str(raw.get("acr", "")), raw["jti"],
                    dt.datetime.fromtimestamp(exp, dt.timezone.utc), raw.get("consent") is True)


def check_qr(tokens: AccessTokens, token: str, *, now: dt.datetime) -> QrClaims:
    """Signature (cached public keys), issuer, audience and lifetime; not whether it was used."""
    try:
        raw = tokens.verify_typed(token.strip(), QR_TYPE)
    except InvalidToken as exc:
        raise QrRejected(f"the QR does not verify: {exc.detail}") from exc
    return _claims(raw, tokens.issuer, now)


class OfflineQrVerifier:
    """A counter terminal's check while the network is down: cached JWKS, a local set of seen ``jti``.

    Each QR lives two minutes, so remembering the ``jti`` values of the last few minutes makes a
    replay at this terminal fail; the visit is recorded online once the network is back.
    """

    def __init__(self, jwks: Mapping[str, Any], *, issuer: str) -> None:
        self.issuer = issuer
        self._keys = {k["kid"]: jwk.construct(dict(k), ALGORITHM) for k in jwks.get("keys", []) if k.get("kid")}
        self._seen: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def verify(self, token: str, *, now: dt.datetime) -> QrClaims:
        token = token.strip()
        try:
            header = jws.get_unverified_header(token)
            key = self._keys.get(header.get("kid", ""))
            if key is None or header.get("alg") != ALGORITHM or header.get("typ") != QR_TYPE:
                raise QrRejected("not signed by a key in the cached JWKS")
            raw = json.loads(jws.verify(token, key, algorithms=[ALGORITHM]))
        except (JOSEError, ValueError) as exc:
            raise QrRejected("the QR does not verify") from exc
        claims = _claims(raw, self.issuer, now)
        with self._lock:
            self._seen = {j: exp for j, exp in self._seen.items() if exp > now - dt.timedelta(minutes=1)}
            if claims.jti in self._seen:
                raise QrRejected("this QR was already used")
            self._seen[claims.jti] = claims.expires_at
        return claims


def _new_visit(session: Session, *, account: Account, staff_login: LoginSession, member: StaffMember, method: str, acr: str,
               jti: str | None, consent: bool, now: dt.datetime) -> CounterVisit:
    visit = CounterVisit(
        id="vis_" + secrets.token_hex(10), qr_jti=jti, account_id=account.id, staff_account_id=member.account_id,
        staff_session_id=staff_login.id, hall=member.hall, method=method, acr=acr, started_at=now,
        expires_at=now + VISIT_LIFETIME, consent_at=now if consent else None, consent_by="applicant" if consent else None,
    )
    session.add(visit)
    session.flush()
    record_event(session, action="identity.counter.visit-start", actor=f"staff:{member.account_id}",
                 target=f"account:{account.id}", details={"visit": visit.id, "method": method, "acr": acr, "hall": member.hall,
                                                          "consent": consent}, at=now)
    return visit


def start_visit_by_qr(session: Session, tokens: AccessTokens, token: str, staff_login: LoginSession, *,
                      now: dt.datetime) -> CounterVisit:
    member = staff_of(session, staff_login)
    claims = check_qr(tokens, token, now=now)
    account = session.get(Account, claims.account_id)
    if account is None or account.disabled_at is not None or account.kind == "staff":
        raise QrRejected("the QR names no active account")
    if session.exec(select(CounterVisit.id).where(CounterVisit.qr_jti == claims.jti)).first() is not None:
        record_event(session, action="identity.counter.qr-replay", actor=f"staff:{member.account_id}",
                     target=f"account:{account.id}", details={"jti": claims.jti, "hall": member.hall}, at=now)
        raise QrRejected("this QR was already used")
    try:
        with session.begin_nested():
            return _new_visit(session, account=account, staff_login=staff_login, member=member, method="qr", acr=claims.acr,
                              jti=claims.jti, consent=claims.consent, now=now)
    except IntegrityError as exc:  # a concurrent scan of the same QR won
        raise QrRejected("this QR was already used") from exc


def start_visit_by_document(
    session: Session, pii: PiiVault, staff_login: LoginSession, *, document_type: str, document_number: str, now: dt.datetime,
) -> CounterVisit:
    """No phone: the staff member checked the physical ID document; find its account, proof it, start a visit."""
    member = staff_of(session, staff_login)
    index = pii.index(HolderKind.PERSON, [normalise_holder_id(HolderKind.PERSON, document_number)])[0]
    account = session.exec(select(Account).where(Account.kind == "person", Account.id_index == index)).first()
    if account is None:
        raise accounts.UnknownAccount("no account has this ID number: register the applicant first")
    accounts.record_in_person_proofing(session, pii, account.id, document_number=document_number, document_type=document_type,
                                       staff=f"staff:{member.account_id}", hall=member.hall, now=now)
    return _new_visit(session, account=account, staff_login=staff_login, member=member, method="document",
                      acr=accounts.ACR_IN_PERSON, jti=None, consent=False, now=now)


def get_visit(session: Session, visit_id: str, staff_login: LoginSession, *, now: dt.datetime, open_only: bool = True) -> CounterVisit:
    """A visit of this hall session; another terminal's visits do not exist for it."""
    visit = session.get(CounterVisit, visit_id)
    if visit is None or visit.staff_session_id != staff_login.id:
        raise NotFound(f"no visit {visit_id} at this counter")
    if open_only and (visit.ended_at is not None or as_utc(visit.expires_at) <= now):
        raise VisitClosed("the visit has ended")
    return visit


def proof_in_person(session: Session, pii: PiiVault, visit_id: str, staff_login: LoginSession, *, document_type: str,
                    document_number: str, now: dt.datetime) -> CounterVisit:
    member = staff_of(session, staff_login)
    visit = get_visit(session, visit_id, staff_login, now=now)
    accounts.record_in_person_proofing(session, pii, visit.account_id, document_number=document_number,
                                       document_type=document_type, staff=f"staff:{member.account_id}", hall=member.hall, now=now)
    visit.acr = accounts.ACR_IN_PERSON
    session.add(visit)
    session.flush()
    return visit


def record_consent(session: Session, visit_id: str, staff_login: LoginSession, *, now: dt.datetime) -> CounterVisit:
    """Staff record the applicant's consent (given in person) for this visit only."""
    member = staff_of(session, staff_login)
    visit = get_visit(session, visit_id, staff_login, now=now)
    if visit.consent_at is None:
        visit.consent_at, visit.consent_by = now, "recorded"
        session.add(visit)
        record_event(session, action="identity.counter.consent", actor=f"staff:{member.account_id}",
                     target=f"account:{visit.account_id}", details={"visit": visit.id, "hall": visit.hall}, at=now)
        session.flush()
    return visit


# What the visit page shows staff of each licence: number, type, status, validity and the holder's name in
# full (they are serving that person), never the ID number nor the type's fields.
COUNTER_DISCLOSURE = Disclosed(fields=(), holder_name="full", holder_id="hidden")


def visit_licences(session: Session, visit_id: str, staff_login: LoginSession, *, purpose: str | None,
                   now: dt.datetime) -> list[Licence]:
    """The applicant's e-licences, for a consented, open visit of this hall session and a declared purpose.

    Each licence shown is recorded in the holder's access log (staff, hall, purpose) and audited.
    """
    member = staff_of(session, staff_login)
    visit = get_visit(session, visit_id, staff_login, now=now)
    if visit.consent_at is None:
        raise NoConsent("the applicant has not consented to this visit reading their e-licences")
    declared = parse_purpose(purpose)
    account = session.get(Account, visit.account_id)
    assert account is not None
    found = accounts.licences_of(session, account, limit=200)
    checker = staff_checker(session, member)
    for licence in found:
        record_access(session, licence=licence, checker=checker, purpose=declared, channel="counter",
                      disclosed=COUNTER_DISCLOSURE, now=now)
    record_event(session, action="identity.counter.licences-read", actor=f"staff:{member.account_id}",
                 target=f"account:{account.id}", details={"visit": visit.id, "count": len(found), "hall": visit.hall,
                                                          "purpose": declared.code}, at=now)
    return found


def end_visit(session: Session, visit_id: str, staff_login: LoginSession, *, now: dt.datetime) -> None:
    visit = get_visit(session, visit_id, staff_login, now=now, open_only=False)
    if visit.ended_at is None:
        visit.ended_at = now
        session.add(visit)
        record_event(session, action="identity.counter.visit-end", actor=f"staff:{visit.staff_account_id}",
                     target=f"account:{visit.account_id}", details={"visit": visit.id}, at=now)
        session.flush()

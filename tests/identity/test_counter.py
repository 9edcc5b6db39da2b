"""The counter: staff, counter QRs (online and offline, replays, forgeries), walk-ins, proofing, consent."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws
from jose.backends import ECKey
from sqlalchemy.engine import Engine
from sqlmodel import select
from audit.models import AuditEvent
from certificates.holders import PiiVault
from certificates.issuance import Actor, Issuer
from certificates.models import LicenceType
from ecert.container import Container
from ecert.db import session_scope
from ecert.errors import NotFound
from ecert.runtime import Runtime
from identity import accounts, counter, login
from identity.models import Account, LoginSession
from identity.tokens import AccessTokens
from tests.certificates.conftest import actor, department, issuer, licence_type, request_for, seal_keys  # noqa: F401
from tests.identity.conftest import PASSWORD, person_id, phone_number


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_staff(engine: Engine, pii: PiiVault, *, roles: tuple[str, ...] = ("counter",), hall: str = "HALL-1") -> tuple[str, LoginSession]:
    username = f"clerk-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        counter.add_staff(session, pii, username=username, name="窗口一", id_number=person_id(), password=PASSWORD,
                          roles=roles, hall=hall, actor="test", now=_now())
    with session_scope(engine) as session:
        result = login.login_password(session, None, login_name=username, password=PASSWORD, now=_now(), staff=True)
    return username, result.session.session


def make_citizen(engine: Engine, pii: PiiVault) -> tuple[str, str, LoginSession]:
    id_number = person_id()
    with session_scope(engine) as session:
        view = accounts.register_person(session, pii, name="陈七", id_number=id_number, phone=phone_number(), password=PASSWORD,
                                        now=_now())
    with session_scope(engine) as session:
        result = login.login_password(session, pii, login_name=id_number, password=PASSWORD, now=_now())
    return view.id, id_number, result.session.session


@pytest.fixture
def tokens(runtime: Runtime, container: Container) -> AccessTokens:
    return container.tokens


def _qr(engine: Engine, tokens: AccessTokens, citizen: LoginSession, *, consent: bool = False, at: dt.datetime | None = None) -> str:
    with session_scope(engine) as session:
        return counter.issue_qr(session, tokens, citizen, consent=consent, now=at or _now()).token


def test_qr_starts_one_visit_only(engine: Engine, pii: PiiVault, tokens: AccessTokens) -> None:
    _, staff = make_staff(engine, pii)
    account_id, _, citizen = make_citizen(engine, pii)
    token = _qr(engine, tokens, citizen)
    with session_scope(engine) as session:
        visit = counter.start_visit_by_qr(session, tokens, token, staff, now=_now())
        assert visit.account_id == account_id and visit.acr == "pwd" and visit.hall == "HALL-1" and visit.consent_at is None
    with session_scope(engine) as session, pytest.raises(counter.QrRejected, match="already used"):
        counter.start_visit_by_qr(session, tokens, token, staff, now=_now())
    _, other_staff = make_staff(engine, pii, hall="HALL-2")
    with session_scope(engine) as session, pytest.raises(counter.QrRejected):  # nor at another counter
        counter.start_visit_by_qr(session, tokens, token, other_staff, now=_now())
    with session_scope(engine) as session, pytest.raises(NotFound):  # another counter cannot open this visit
        counter.get_visit(session, visit.id, other_staff, now=_now())


def test_expired_forged_and_foreign_qrs(engine: Engine, pii: PiiVault, tokens: AccessTokens) -> None:
    _, staff = make_staff(engine, pii)
    _, _, citizen = make_citizen(engine, pii)
    old = _qr(engine, tokens, citizen, at=_now() - dt.timedelta(minutes=3))
    with session_scope(engine) as session, pytest.raises(counter.QrRejected, match="expired"):
        counter.start_visit_by_qr(session, tokens, old, staff, now=_now())
    genuine = _qr(engine, tokens, citizen)
    header = jws.get_unverified_header(genuine)
    claims = json.loads(jws.get_unverified_claims(genuine))
    forger = ECKey(ec.generate_private_key(ec.SECP256R1()), "ES256")  # a throwaway key playing the forger
    forged = jws.sign({**claims, "jti": uuid.uuid4().hex}, forger, headers={"kid": header["kid"], "typ": "counter+jwt"},
                      algorithm="ES256")
    with session_scope(engine) as session, pytest.raises(counter.QrRejected):
        counter.start_visit_by_qr(session, tokens, forged, staff, now=_now())
    access = tokens.issue(subject="x", scopes=[], client_id="x", department=None, acr="pwd").token
    with session_scope(engine) as session, pytest.raises(counter.QrRejected):  # an access token is not a counter QR
        counter.start_visit_by_qr(session, tokens, access, staff, now=_now())


def test_offline_verification_with_cached_jwks(engine: Engine, pii: PiiVault, tokens: AccessTokens) -> None:
    _, _, citizen = make_citizen(engine, pii)
    verifier = counter.OfflineQrVerifier(json.loads(json.dumps(tokens.keys.jwks())), issuer=tokens.issuer)
    token = _qr(engine, tokens, citizen, consent=True)
    claims = verifier.verify(token, now=_now())
    assert claims.account_id == citizen.account_id and claims.consent and claims.name == "陈七"
    with pytest.raises(counter.QrRejected, match="already used"):
        verifier.verify(token, now=_now())
    with pytest.raises(counter.QrRejected, match="expired"):
        verifier.verify(_qr(engine, tokens, citizen), now=_now() + dt.timedelta(minutes=5))
    with pytest.raises(counter.QrRejected):
        verifier.verify(token[:-4] + "AAAA", now=_now())


def test_staff_role_is_needed(engine: Engine, pii: PiiVault, tokens: AccessTokens) -> None:
    _, supervisor = make_staff(engine, pii, roles=("supervisor",))
    _, _, citizen = make_citizen(engine, pii)
    with session_scope(engine) as session, pytest.raises(counter.NotStaff):
        counter.start_visit_by_qr(session, tokens, _qr(engine, tokens, citizen), supervisor, now=_now())
    with session_scope(engine) as session, pytest.raises(counter.NotStaff):  # a citizen's session is no staff session
        counter.start_visit_by_qr(session, tokens, _qr(engine, tokens, citizen), citizen, now=_now())


def test_walk_in_with_document_consent_and_licences(
    engine: Engine, pii: PiiVault, tokens: AccessTokens, issuer: Issuer, actor: Actor, department: str,  # noqa: F811
    licence_type: LicenceType,  # noqa: F811
) -> None:
    _, staff = make_staff(engine, pii)
    account_id, id_number, _ = make_citizen(engine, pii)
    with session_scope(engine) as session:
        prepared = issuer.prepare(session, actor, department, request_for(holder_kind="person", holder_name="陈七", holder_id=id_number))
        licence, _ = issuer.issue_one(session, actor, prepared)
        number = licence.number
    with session_scope(engine) as session, pytest.raises(accounts.UnknownAccount):
        counter.start_visit_by_document(session, pii, staff, document_type="resident-id", document_number=person_id(), now=_now())
    with session_scope(engine) as session:
        visit = counter.start_visit_by_document(session, pii, staff, document_type="resident-id", document_number=id_number,
                                                now=_now())
        assert visit.acr == "in-person" and visit.method == "document"
        assert session.get(Account, account_id).assurance == "in-person"  # type: ignore[union-attr]
    with session_scope(engine) as session, pytest.raises(counter.NoConsent):
        counter.visit_licences(session, visit.id, staff, purpose="service", now=_now())
    with session_scope(engine) as session:
        counter.record_consent(session, visit.id, staff, now=_now())
        found = counter.visit_licences(session, visit.id, staff, purpose="service", now=_now())
        assert [lic.number for lic in found] == [number]
    with session_scope(engine) as session:
        counter.end_visit(session, visit.id, staff, now=_now())
    with session_scope(engine) as session, pytest.raises(counter.VisitClosed):
        counter.visit_licences(session, visit.id, staff, purpose="service", now=_now())
    with session_scope(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.target == f"account:{account_id}"))]
        for action in ("identity.counter.proofing", "identity.counter.visit-start", "identity.counter.consent",
                       "identity.counter.licences-read", "identity.counter.visit-end"):
            assert action in actions
        details = [json.dumps(e.details) for e in session.exec(select(AuditEvent).where(AuditEvent.target == f"account:{account_id}"))]
        assert not any(id_number in d for d in details)


def test_visits_expire(engine: Engine, pii: PiiVault, tokens: AccessTokens) -> None:
    _, staff = make_staff(engine, pii)
    _, _, citizen = make_citizen(engine, pii)
    with session_scope(engine) as session:
        visit = counter.start_visit_by_qr(session, tokens, _qr(engine, tokens, citizen, consent=True), staff, now=_now())
        assert visit.consent_by == "applicant"
    with session_scope(engine) as session, pytest.raises(counter.VisitClosed):
        counter.visit_licences(session, visit.id, staff, purpose="service", now=_now() + counter.VISIT_LIFETIME)

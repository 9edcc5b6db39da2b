"""The holder sees who checked (#9 part 4) and their standing consents (#6), over real HTTP.

Counter reads, identified API verification (bearer token + purpose, also PDF upload) and an app's
reads under a standing consent are recorded in the holder's access log and shown on their portal
page; anonymous checks are only counted; the OpenID Connect consent screen grants, the portal
revokes, and the app is refused afterwards.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ecert.container import Container
from api.routes.disclosures import PAGE_SIZE
from audit import stats
from audit.models import AuditEvent
from certificates import access_log
from certificates.holders import PiiVault
from certificates.issuance import Actor, Issuer
from certificates.models import Licence, LicenceAccess, LicenceType
from ecert.db import session_scope
from ecert.runtime import Runtime
from identity import accounts, consents, counter, oidc
from identity.models import Account
from tests.certificates.conftest import actor, department, issuer, licence_type, request_for, seal_keys  # noqa: F401
from tests.identity.conftest import PASSWORD, bearer, new_client, person_id, phone_number, pii, token_for  # noqa: F401
from tests.identity.test_counter import make_staff
from tests.verify.conftest import Issued, authority, issued, sealer  # noqa: F401

REDIRECT = "http://localhost:8765/callback"




@dataclass(frozen=True)
class Holder:
    account_id: str
    id_number: str
    licence_id: str
    number: str
    token: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _holder(engine: Engine, pii: PiiVault, issuer: Issuer, actor: Actor, department: str, name: str) -> Holder:  # noqa: F811
    id_number = person_id()
    with session_scope(engine) as session:
        view = accounts.register_person(session, pii, name=name, id_number=id_number, phone=phone_number(), password=PASSWORD,
                                        now=_now())
        prepared = issuer.prepare(session, actor, department, request_for(holder_kind="person", holder_name=name,
                                                                          holder_id=id_number))
        licence, _ = issuer.issue_one(session, actor, prepared)
        return Holder(view.id, id_number, licence.id, licence.number, licence.token)


@pytest.fixture
def holders(engine: Engine, pii: PiiVault, issuer: Issuer, actor: Actor, department: str,  # noqa: F811
            licence_type: LicenceType) -> tuple[Holder, Holder]:  # noqa: F811
    return (_holder(engine, pii, issuer, actor, department, "钱十一"), _holder(engine, pii, issuer, actor, department, "孙十二"))


def _browser(live_url: str, id_number: str) -> httpx.Client:
    browser = httpx.Client(base_url=live_url)
    response = browser.post("/portal/login", data={"login_name": id_number, "password": PASSWORD, "next": "/portal"})
    assert response.status_code == 303, response.text
    return browser


def _rows(engine: Engine, licence_id: str) -> list[LicenceAccess]:
    with Session(engine) as session:
        return list(session.exec(select(LicenceAccess).where(LicenceAccess.licence_id == licence_id)
                                 .order_by(LicenceAccess.id)).all())  # type: ignore[arg-type]


def _problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/" + slug)


def test_counter_check_is_recorded_and_only_its_holder_sees_it(
    engine: Engine, pii: PiiVault, holders: tuple[Holder, Holder], live_url: str,
) -> None:
    a, b = holders
    _, staff = make_staff(engine, pii, hall="YUEXIU-2")
    with session_scope(engine) as session:
        visit = counter.start_visit_by_document(session, pii, staff, document_type="resident-id", document_number=a.id_number,
                                                now=_now())
        counter.record_consent(session, visit.id, staff, now=_now())
        with pytest.raises(access_log.InvalidPurpose):
            counter.visit_licences(session, visit.id, staff, purpose=None, now=_now())
        assert [lic.number for lic in counter.visit_licences(session, visit.id, staff, purpose="employment", now=_now())] == [a.number]
    (row,) = _rows(engine, a.licence_id)
    assert (row.checker_kind, row.checker_name, row.checker_org, row.purpose, row.channel) == (
        "staff", "窗口一", "YUEXIU-2", "employment", "counter")
    assert row.disclosed == {"fields": [], "holder_name": "full", "holder_id": "hidden"}
    with Session(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "licence.access",
                                                      AuditEvent.target == f"licence:{a.licence_id}")).one()
        assert event.actor == f"staff:{row.checker_id}" and event.details["purpose"] == "employment"

    page = _browser(live_url, a.id_number).get("/portal/checks?lang=en")
    assert page.status_code == 200 and a.number in page.text and "Counter staff" in page.text
    assert "YUEXIU-2" in page.text and "Employment or practice check" in page.text and "ID number not shown" in page.text
    assert a.id_number not in page.text
    other = _browser(live_url, b.id_number)
    for lang, empty in (("en", "Nothing recorded yet"), ("zh", "暂无记录")):
        theirs = other.get(f"/portal/checks?lang={lang}")
        assert theirs.status_code == 200 and empty in theirs.text and a.number not in theirs.text
    assert httpx.get(f"{live_url}/portal/checks").headers["location"].startswith("/portal/login")


def test_identified_api_check_needs_a_purpose_and_is_recorded(
    client: TestClient, runtime: Runtime, holders: tuple[Holder, Holder], uid: str,
) -> None:
    a, _ = holders
    checker = new_client(runtime, f"K{uid.upper()}", ["licences:read"], name="Housing bureau tenancy system")
    headers = bearer(token_for(client, checker))
    _problem(client.get(f"/api/v1/verify/{a.token}", headers=headers), 422, "purpose-required")  # type: ignore[arg-type]
    _problem(client.get(f"/api/v1/verify/{a.token}?purpose=x", headers=headers), 422, "purpose-required")  # type: ignore[arg-type]
    _problem(client.get(f"/api/v1/verify/{a.token}?purpose=service",  # type: ignore[arg-type]
                        headers=bearer("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")), 401, "unauthenticated")
    assert _rows(runtime.engine, a.licence_id) == []
    ok = client.get(f"/api/v1/verify/{a.token}", params={"purpose": "eligibility"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["outcome"] == "valid" and a.id_number not in ok.text
    free = client.get(f"/api/v1/verify/{a.token}", params={"purpose": "  tenancy\nfor flat 3  "}, headers=headers)
    assert free.status_code == 200
    first, second = _rows(runtime.engine, a.licence_id)
    assert (first.checker_kind, first.checker_id, first.checker_org, first.purpose, first.channel) == (
        "department", checker.client.client_id, f"K{uid.upper()}", "eligibility", "api-verify")
    assert first.checker_name == "Housing bureau tenancy system"
    assert first.disclosed == {"fields": ["company"], "holder_name": "full", "holder_id": "hidden"}
    assert (second.purpose, second.purpose_text) == ("other", "tenancy for flat 3")
    missing = client.get("/api/v1/verify/AAAAAAAAAAAAAAAAAAAAAAAA", params={"purpose": "service"}, headers=headers)
    assert missing.status_code == 404 and len(_rows(runtime.engine, a.licence_id)) == 2


def test_anonymous_check_is_counted_not_recorded(client: TestClient, runtime: Runtime, container: Container, holders: tuple[Holder, Holder],
                                                 department: str) -> None:  # noqa: F811
    a, _ = holders
    counts = container.verification.counter

    def verified() -> int:
        counts.flush()
        with Session(runtime.engine) as session:
            return sum(c.count for c in stats.daily_counts(session, start=_now().date(), end=_now().date(),
                                                          departments=[department], metric_prefix="verify.link"))

    before = verified()
    assert client.get(f"/api/v1/verify/{a.token}").status_code == 200
    assert client.get(f"/v/{a.token}").status_code == 200
    assert verified() == before + 2
    assert _rows(runtime.engine, a.licence_id) == []


def test_identified_pdf_upload_is_recorded(client: TestClient, runtime: Runtime, issued: Issued, uid: str) -> None:  # noqa: F811
    headers = bearer(token_for(client, new_client(runtime, f"P{uid.upper()}", ["licences:read"], name="Bank onboarding")))
    pdf = issued.pdfs["valid"]
    _problem(client.post("/api/v1/verify/pdf", content=pdf, headers={**headers, "Content-Type": "application/pdf"}),  # type: ignore[arg-type]
             422, "purpose-required")
    before = len(_rows(runtime.engine, issued.licences["valid"].id))
    done = client.post("/api/v1/verify/pdf?purpose=transaction", files={"file": ("l.pdf", pdf, "application/pdf")},
                       headers=headers)
    assert done.status_code == 200 and done.json()["outcome"] == "valid"
    rows = _rows(runtime.engine, issued.licences["valid"].id)
    assert len(rows) == before + 1 and (rows[-1].channel, rows[-1].purpose, rows[-1].checker_name) == (
        "api-pdf", "transaction", "Bank onboarding")


# --- standing consents: the OpenID Connect consent screen, the app's reads, revocation -------------------


@pytest.fixture
def app_party(engine: Engine) -> oidc.NewRelyingParty:
    with session_scope(engine) as session:
        return oidc.register_relying_party(session, name="Job portal", redirect_uris=[REDIRECT],
                                           scopes=["openid", "profile", "licences:own"], purpose="employment",
                                           actor="test", now=_now())


def _authorize_params(party: oidc.NewRelyingParty, verifier: str, **extra: str) -> dict[str, str]:
    return {"client_id": party.party.client_id, "redirect_uri": REDIRECT, "response_type": "code",
            "scope": "openid licences:own", "state": "st", "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256", **extra}


def _code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st"], query
    return query["code"][0]


def _tokens(live_url: str, party: oidc.NewRelyingParty, code: str, verifier: str) -> dict[str, str]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    response = httpx.post(f"{live_url}/oauth/token", data=form, auth=(party.party.client_id, party.secret or ""))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_consent_screen_grant_read_and_revoke(
    live_url: str, engine: Engine, app_party: oidc.NewRelyingParty, holders: tuple[Holder, Holder],
) -> None:
    a, b = holders
    browser, verifier = _browser(live_url, a.id_number), secrets.token_urlsafe(48)
    silent = browser.get("/oauth/authorize", params=_authorize_params(app_party, verifier, prompt="none"))
    assert parse_qs(urlsplit(silent.headers["location"]).query)["error"] == ["consent_required"]
    screen = browser.get("/oauth/authorize", params=_authorize_params(app_party, verifier, lang="zh"))
    assert screen.status_code == 200 and "Job portal" in screen.text and "读取您本人的电子证照" in screen.text
    assert "入职或从业资格核验" in screen.text and 'name="viewport"' in screen.text
    form = {k: v for k, v in _authorize_params(app_party, verifier).items()}
    denied = browser.post("/oauth/authorize/consent", data={**form, "decision": "deny"})
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]
    assert httpx.post(f"{live_url}/oauth/authorize/consent", data={**form, "decision": "allow"}).status_code == 303  # no session
    stronger = browser.post("/oauth/authorize/consent", data={**form, "acr_values": "pwd+totp", "decision": "allow"})
    assert stronger.status_code == 303 and stronger.headers["location"].startswith("/portal/login")  # the session is pwd only
    tokens = _tokens(live_url, app_party, _code_of(browser.post("/oauth/authorize/consent", data={**form, "decision": "allow"})),
                     verifier)
    again = secrets.token_urlsafe(48)  # the grant is remembered: no screen the second time
    _code_of(browser.get("/oauth/authorize", params=_authorize_params(app_party, again)))

    read = httpx.get(f"{live_url}/api/v1/me/licences", headers=bearer(tokens["access_token"]))
    assert read.status_code == 200, read.text
    (item,) = read.json()["items"]
    assert item["number"] == a.number and item["holder"] == {"kind": "person", "name": "钱十一"}
    assert set(item["fields"]) == {"company"} and a.id_number not in read.text
    (row,) = _rows(engine, a.licence_id)
    assert (row.checker_kind, row.checker_name, row.purpose, row.channel) == ("app", "Job portal", "employment", "api-consent")

    with Session(engine) as session:
        (consent,) = consents.list_for_account(session, a.account_id)
    assert consent.scopes == ("licences:own",) and consent.revoked_at is None
    listed = browser.get("/portal/consents?lang=en")
    assert listed.status_code == 200 and "Job portal" in listed.text and f"/portal/consents/{consent.id}/revoke" in listed.text
    assert _browser(live_url, b.id_number).post(f"/portal/consents/{consent.id}/revoke").status_code == 404  # not B's
    assert browser.post(f"/portal/consents/{consent.id}/revoke").status_code == 303

    refused = httpx.get(f"{live_url}/api/v1/me/licences", headers=bearer(tokens["access_token"]))
    _problem(refused, 403, "consent-required")
    refresh = httpx.post(f"{live_url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                         auth=(app_party.party.client_id, app_party.secret or ""))
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    assert "Revoked" in browser.get("/portal/consents?lang=en").text
    history = browser.get("/portal/checks?lang=en").text
    assert "Job portal" in history and "App reading under your consent" in history
    with Session(engine) as session:
        actions = {e.action for e in session.exec(select(AuditEvent).where(AuditEvent.actor == f"account:{a.account_id}"))}
        assert {"identity.consent.grant", "identity.consent.revoke"} <= actions
        assert session.get(Account, a.account_id) is not None


def test_apps_reading_without_consent_and_other_callers_are_refused(
    live_url: str, client: TestClient, runtime: Runtime, holders: tuple[Holder, Holder], uid: str,
) -> None:
    a, _ = holders
    with session_scope(runtime.engine) as session:  # a first-party app that never asked for licences:own
        party = oidc.register_relying_party(session, name="Sign-in only", redirect_uris=[REDIRECT], actor="test", now=_now())
    verifier = secrets.token_urlsafe(48)
    params = {**_authorize_params(party, verifier), "scope": "openid profile"}
    tokens = _tokens(live_url, party, _code_of(_browser(live_url, a.id_number).get("/oauth/authorize", params=params)), verifier)
    _problem(httpx.get(f"{live_url}/api/v1/me/licences", headers=bearer(tokens["access_token"])), 403, "insufficient-scope")
    department = bearer(token_for(client, new_client(runtime, f"M{uid.upper()}", ["licences:read"])))
    assert client.get("/api/v1/me/licences", headers=department).status_code == 403
    _problem(httpx.get(f"{live_url}/api/v1/me/licences"), 401, "unauthenticated")  # type: ignore[arg-type]


def test_history_is_newest_first_and_paginated(engine: Engine, holders: tuple[Holder, Holder], live_url: str) -> None:
    a, _ = holders
    checker = access_log.Checker("department", "cl_pages", "Pagination bureau", "PAGES")
    start = _now() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        row = session.get(Licence, a.licence_id)
        assert row is not None
        for minute in range(PAGE_SIZE + 1):
            access_log.record_access(session, licence=row, checker=checker, purpose=access_log.Purpose("other", f"check {minute:02d}"),
                                     channel="api-verify", disclosed=access_log.Disclosed(), now=start + dt.timedelta(minutes=minute))
    browser = _browser(live_url, a.id_number)
    first = browser.get("/portal/checks?lang=en").text
    assert first.count('class="check"') == 20 and 'id="older"' in first and 'id="newer"' not in first
    assert first.index("check 20") < first.index("check 19") and "check 00" not in first
    second = browser.get("/portal/checks?page=2&lang=en").text
    assert second.count('class="check"') == 1 and "check 00" in second and 'id="newer"' in second and 'id="older"' not in second
    assert browser.get("/portal/checks?page=0").status_code == 422

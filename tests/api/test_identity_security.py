"""Security of the identity routes: a role x route matrix, no secrets or ID numbers in logs or audit
details, and lockout that does not reveal which login names exist."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from typing import Any
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from ecert.ratelimit import TokenBuckets
from audit.models import AuditEvent
from certificates.holders import PiiVault
from ecert.db import session_scope
from ecert.runtime import Runtime
from identity import counter, login, oidc
from tests.identity.conftest import PASSWORD, bearer, new_client, person_id, phone_number, pii, token_for, uscc  # noqa: F401

REDIRECT = "http://localhost:8765/cb"


@pytest.fixture(autouse=True)
def generous_limits(monkeypatch: pytest.MonkeyPatch, client: TestClient, runtime: Runtime) -> Iterator[None]:
    client.cookies.clear()  # the shared client keeps cookies; each request here names its own
    yield
    client.cookies.clear()


def _register(client: TestClient) -> tuple[str, str, str]:
    """Register through the portal; (ID number, phone, session cookie)."""
    id_number, phone = person_id(), phone_number()
    response = client.post("/portal/register", data={"name": "测试", "id_number": id_number, "phone": phone, "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return id_number, phone, response.cookies["ecert_session"]


def _staff(engine: Engine, pii: PiiVault, client: TestClient, roles: list[str]) -> str:  # noqa: F811
    username = f"s-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        counter.add_staff(session, pii, username=username, name="职员", id_number=person_id(), password=PASSWORD, roles=roles,
                          hall="H", actor="test", now=dt.datetime.now(dt.timezone.utc))
    response = client.post("/counter/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.cookies["ecert_staff"]


def _person_token(client: TestClient, engine: Engine, citizen: str) -> str:
    with session_scope(engine) as session:
        party = oidc.register_relying_party(session, name="rp", redirect_uris=[REDIRECT], actor="test",
                                            now=dt.datetime.now(dt.timezone.utc))
    verifier = "v" * 64
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    params = {"client_id": party.party.client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
              "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    response = client.get("/oauth/authorize", params=params, cookies={"ecert_session": citizen}, follow_redirects=False)
    code = re.search(r"code=([^&]+)", response.headers["location"]).group(1)  # type: ignore[union-attr]
    token = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                              "code_verifier": verifier}, auth=(party.party.client_id, party.secret or ""))
    return str(token.json()["access_token"])


PAGES = {  # route -> who may use it
    ("GET", "/portal"): {"citizen", "enterprise"},
    ("GET", "/portal/qr"): {"citizen", "enterprise"},
    ("GET", "/portal/totp"): {"citizen", "enterprise"},
    ("GET", "/portal/licences/nope.pdf"): {"citizen", "enterprise"},
    ("POST", "/portal/sessions/ses_nope/revoke"): {"citizen", "enterprise"},
    ("GET", "/portal/agents"): {"enterprise"},
    ("POST", "/portal/agents"): {"enterprise"},
    ("POST", "/portal/agents/acc_nope/remove"): {"enterprise"},
    ("GET", "/portal/acting"): {"citizen"},
    ("GET", "/portal/acting/acc_nope"): {"citizen"},
    ("GET", "/portal/acting/acc_nope/licences/nope.pdf"): {"citizen"},
    ("GET", "/counter"): {"counter", "supervisor"},
    ("POST", "/counter/scan"): {"counter"},
    ("POST", "/counter/walk-in"): {"counter"},
    ("POST", "/counter/visits/vis_nope/consent"): {"counter"},
}
APIS = {
    ("GET", "/oauth/userinfo"): {"person-token"},
    ("POST", "/api/v1/identity/verify"): {"dept-verify-token"},
    ("GET", "/api/v1/licences?department=X"): set(),  # people never act for a department
}
PRINCIPALS = ("anonymous", "citizen", "enterprise", "counter", "supervisor", "person-token", "dept-verify-token")


def test_role_route_matrix(client: TestClient, engine: Engine, pii: PiiVault) -> None:  # noqa: F811
    _, _, citizen = _register(client)
    enterprise = client.post("/portal/register", data={"name": "示例企业", "id_number": uscc(), "phone": phone_number(),
                                                       "password": PASSWORD, "kind": "enterprise", "legal_representative": "法人"},
                             follow_redirects=False).cookies["ecert_session"]
    cookies = {"citizen": {"ecert_session": citizen}, "enterprise": {"ecert_session": enterprise},
               "counter": {"ecert_staff": _staff(engine, pii, client, ["counter"])},
               "supervisor": {"ecert_staff": _staff(engine, pii, client, ["supervisor"])}}
    dept = f"SEC{uuid.uuid4().hex[:4].upper()}"
    headers = {"person-token": bearer(_person_token(client, engine, citizen)),
               "dept-verify-token": bearer(token_for(client, new_client(engine, dept, ["identity:verify"])))}
    form = {"qr": "x.y.z", "document_number": person_id(), "token": "abc", "person": "acc_nope"}
    for (method, path), allowed in {**PAGES, **APIS}.items():
        for who in PRINCIPALS:
            client.cookies.clear()
            response = client.request(method, path, cookies=cookies.get(who, {}), headers=headers.get(who, {}),
                                      data=form if method == "POST" else None, follow_redirects=False)
            to_login = response.status_code == 303 and "/login" in response.headers.get("location", "")
            denied = to_login or response.status_code in (401, 403)
            assert denied != (who in allowed), (method, path, who, response.status_code, response.text[:200])


def test_no_secrets_or_id_numbers_in_logs_or_audit(client: TestClient, engine: Engine, pii: PiiVault,  # noqa: F811
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with session_scope(engine) as session:
        start = session.exec(select(func.max(AuditEvent.seq))).one() or 0
    id_number, phone, cookie = _register(client)
    enrol = client.get("/portal/totp", cookies={"ecert_session": cookie})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text).group(1)  # type: ignore[union-attr]
    confirmed = client.post("/portal/totp/confirm", data={"code": pyotp.TOTP(secret).now()}, cookies={"ecert_session": cookie})
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", confirmed.text)
    assert len(codes) == 10
    client.post("/portal/login", data={"login_name": id_number, "password": "wrong password 1"})
    client.post("/portal/login", data={"login_name": phone, "password": PASSWORD}, follow_redirects=False)
    staff = _staff(engine, pii, client, ["counter"])
    qr = re.search(r'id="qr-text">([^<]+)<', client.get("/portal/qr?share=1", cookies={"ecert_session": cookie}).text).group(1)  # type: ignore[union-attr]
    client.post("/counter/scan", data={"qr": qr}, cookies={"ecert_staff": staff})
    client.post("/counter/walk-in", data={"document_number": id_number}, cookies={"ecert_staff": staff})
    secrets_ = [id_number, phone, PASSWORD, secret, cookie.split(".")[1], *codes]
    for value in secrets_:
        assert value not in caplog.text
    with session_scope(engine) as session:
        events = session.exec(select(AuditEvent).where(col(AuditEvent.seq) > start)).all()
    dumped = json.dumps([[e.action, e.actor, e.target, e.details] for e in events], ensure_ascii=False)
    assert "identity.login.failure" in dumped and "identity.counter.proofing" in dumped and "identity.token.issue" in dumped
    for value in secrets_:
        assert value not in dumped


def test_lockout_does_not_enumerate(client: TestClient) -> None:
    known, _, _ = _register(client)
    unknown = person_id()
    answers: dict[str, list[tuple[int, str]]] = {}
    for name in (known, unknown):
        answers[name] = []
        for _ in range(login.MAX_FAILURES + 1):
            response = client.post("/portal/login", data={"login_name": name, "password": "not the password"})
            answers[name].append((response.status_code, re.sub(r'value="[^"]*"', "", response.text)))
    assert answers[known] == answers[unknown]
    assert [status for status, _ in answers[known]] == [401] * login.MAX_FAILURES + [429]
    locked = client.post("/portal/login", data={"login_name": known, "password": PASSWORD})
    assert locked.status_code == 429  # even the right password, while locked


def test_login_attempts_are_rate_limited_per_address(client: TestClient, swap: Any) -> None:
    swap(client.app, login_limit=TokenBuckets(0.01, 3))
    statuses = [client.post("/portal/login", data={"login_name": person_id(), "password": "whatever 123"}).status_code
                for _ in range(4)]
    assert statuses == [401, 401, 401, 429]

"""One-time secrets are used once, under concurrency, on SQLite and PostgreSQL.

Each secret is sent by 8 threads at once (a barrier releases them together) to the real service under
uvicorn: exactly one request succeeds, the other seven are refused with a 4xx, none gets a 5xx. The
database then shows one use only (one token family, one session, one visit).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.engine import Engine
from sqlmodel import select
from api.web import SESSION_COOKIE, STAFF_COOKIE
from certificates.holders import PiiVault
from ecert.container import Container
from ecert.db import session_scope
from ecert.runtime import Runtime
from identity import accounts, counter, login, oidc, passwords
from identity.models import Account, CounterVisit, LoginSession, RecoveryCode, RefreshToken
from tests.identity.conftest import PASSWORD, person_id, phone_number

WAYS = 8
REDIRECT = "http://localhost:8765/callback"


def race(call: Callable[[httpx.Client], httpx.Response], *, cookies: list[dict[str, str]] | None = None,
         base_url: str) -> list[httpx.Response]:
    """``call`` from WAYS threads released together, each with its own connection (and cookies)."""
    barrier = threading.Barrier(WAYS)
    results: list[httpx.Response | BaseException | None] = [None] * WAYS

    def run(i: int) -> None:
        with httpx.Client(base_url=base_url, cookies=(cookies or [{}] * WAYS)[i], timeout=60) as http:
            try:
                barrier.wait()
                results[i] = call(http)
            except BaseException as exc:  # noqa: BLE001 - reported below
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WAYS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in results if not isinstance(r, httpx.Response)]
    assert not failed, failed
    return [r for r in results if isinstance(r, httpx.Response)]


def one_winner(responses: list[httpx.Response], won: Callable[[httpx.Response], bool]) -> httpx.Response:
    statuses = sorted(r.status_code for r in responses)
    assert all(s < 500 for s in statuses), statuses
    winners = [r for r in responses if won(r)]
    assert len(winners) == 1, statuses
    assert all(400 <= r.status_code < 500 for r in responses if r is not winners[0]), statuses
    return winners[0]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def person(engine: Engine, pii: PiiVault) -> str:
    with session_scope(engine) as session:
        return accounts.register_person(session, pii, name="钱八", id_number=person_id(), phone=phone_number(),
                                        password=PASSWORD, now=_now()).id


def _session_cookie(engine: Engine, account_id: str, *, pending: bool = False) -> str:
    """A portal session made directly (8 password logins over HTTP would hit the per-address login limit)."""
    with session_scope(engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        return login.start_session(session, account, acr=accounts.ACR_PASSWORD, now=_now(), mfa_pending=pending).cookie


@pytest.fixture
def party(engine: Engine) -> oidc.NewRelyingParty:
    with session_scope(engine) as session:
        return oidc.register_relying_party(session, name="Housing app", redirect_uris=[REDIRECT], scopes=["openid"],
                                           actor="test", now=_now())


def _code(live_url: str, engine: Engine, party: oidc.NewRelyingParty, account_id: str, verifier: str) -> str:
    params = {"client_id": party.party.client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
              "state": "s", "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    browser = httpx.Client(base_url=live_url, cookies={SESSION_COOKIE: _session_cookie(engine, account_id)})
    response = browser.get("/oauth/authorize", params=params)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def _families(engine: Engine, client_id: str) -> list[RefreshToken]:
    with session_scope(engine) as session:
        return list(session.exec(select(RefreshToken).where(RefreshToken.client_id == client_id)))


def test_an_authorization_code_is_redeemed_once(live_url: str, engine: Engine, party: oidc.NewRelyingParty,
                                                person: str) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(live_url, engine, party, person, verifier)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    auth = (party.party.client_id, party.secret or "")
    responses = race(lambda http: http.post("/oauth/token", data=form, auth=auth), base_url=live_url)
    one_winner(responses, lambda r: r.status_code == 200)
    assert {r.json()["error"] for r in responses if r.status_code != 200} == {"invalid_grant"}
    tokens = _families(engine, party.party.client_id)
    assert len(tokens) == 1  # one redemption issued tokens; the replays revoked them (RFC 6749 §4.1.2)
    assert tokens[0].revoked_at is not None


def test_a_refresh_token_rotates_once_and_its_reuse_revokes_the_family(
    live_url: str, engine: Engine, party: oidc.NewRelyingParty, person: str,
) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(live_url, engine, party, person, verifier)
    auth = (party.party.client_id, party.secret or "")
    first = httpx.post(f"{live_url}/oauth/token", auth=auth, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert first.status_code == 200, first.text
    form = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    responses = race(lambda http: http.post("/oauth/token", data=form, auth=auth), base_url=live_url)
    winner = one_winner(responses, lambda r: r.status_code == 200)
    assert {r.json()["error"] for r in responses if r is not winner} == {"invalid_grant"}
    tokens = _families(engine, party.party.client_id)
    assert len(tokens) == 2 and len({t.family_id for t in tokens}) == 1  # the original and one rotation
    assert all(t.revoked_at is not None for t in tokens)  # the reuse revoked the family, the winner's new token too
    again = httpx.post(f"{live_url}/oauth/token", auth=auth,
                       data={"grant_type": "refresh_token", "refresh_token": winner.json()["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def _enrol(engine: Engine, pii: PiiVault, account_id: str) -> tuple[str, list[str]]:
    """TOTP on, confirmed with the previous step's code, so the current step is still unused."""
    with session_scope(engine) as session:
        secret = accounts.begin_totp(session, pii, account_id, issuer="ecert").secret
    earlier = _now() - dt.timedelta(seconds=passwords.TOTP_STEP)
    with session_scope(engine) as session:
        codes = accounts.confirm_totp(session, pii, account_id, passwords.totp_code(secret, earlier), now=earlier)
    return secret, codes


def _second_factor_race(live_url: str, engine: Engine, account_id: str, code: str) -> None:
    pending = [{SESSION_COOKIE: _session_cookie(engine, account_id, pending=True)} for _ in range(WAYS)]
    responses = race(lambda http: http.post("/portal/login/code", data={"code": code, "next": "/portal"}),
                     cookies=pending, base_url=live_url)
    one_winner(responses, lambda r: r.status_code == 303 and r.headers["location"] == "/portal"
               and SESSION_COOKIE in r.cookies)
    with session_scope(engine) as session:
        full = session.exec(select(LoginSession).where(LoginSession.account_id == account_id,
                                                       LoginSession.acr == accounts.ACR_TOTP)).all()
    assert len(full) == 1


def test_a_totp_code_logs_in_once_per_step(live_url: str, engine: Engine, pii: PiiVault, person: str) -> None:
    secret, _ = _enrol(engine, pii, person)
    _second_factor_race(live_url, engine, person, passwords.totp_code(secret, _now()))


def test_a_recovery_code_logs_in_once(live_url: str, engine: Engine, pii: PiiVault, person: str) -> None:
    _, recovery = _enrol(engine, pii, person)
    _second_factor_race(live_url, engine, person, recovery[0])


def test_one_pending_login_finishes_once(live_url: str, engine: Engine, pii: PiiVault, person: str) -> None:
    """The same pending session sent with a code of each accepted step: one full session, not several."""
    secret, _ = _enrol(engine, pii, person)
    cookie = {SESSION_COOKIE: _session_cookie(engine, person, pending=True)}
    codes = iter([passwords.totp_code(secret, _now() + dt.timedelta(seconds=passwords.TOTP_STEP * (i % 2)))
                  for i in range(WAYS)])
    lock = threading.Lock()

    def submit(http: httpx.Client) -> httpx.Response:
        with lock:
            code = next(codes)
        return http.post("/portal/login/code", data={"code": code, "next": "/portal"})

    responses = race(submit, cookies=[cookie] * WAYS, base_url=live_url)
    winners = [r for r in responses if r.status_code == 303 and r.headers["location"] == "/portal"]
    assert len(winners) == 1 and all(r.status_code < 500 for r in responses), [r.status_code for r in responses]
    with session_scope(engine) as session:
        full = session.exec(select(LoginSession).where(LoginSession.account_id == person,
                                                       LoginSession.acr == accounts.ACR_TOTP)).all()
    assert len(full) == 1


def test_totp_enrolment_is_confirmed_once(live_url: str, engine: Engine, pii: PiiVault, person: str) -> None:
    with session_scope(engine) as session:
        secret = accounts.begin_totp(session, pii, person, issuer="ecert").secret
    cookie = {SESSION_COOKIE: _session_cookie(engine, person)}
    code = passwords.totp_code(secret, _now())
    responses = race(lambda http: http.post("/portal/totp/confirm", data={"code": code}), cookies=[cookie] * WAYS,
                     base_url=live_url)
    winner = one_winner(responses, lambda r: r.status_code == 200)
    with session_scope(engine) as session:
        account = session.get(Account, person)
        assert account is not None and account.totp_cipher is not None and account.totp_pending_cipher is None
        stored = set(session.exec(select(RecoveryCode.code_hash).where(RecoveryCode.account_id == person)))
    shown = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", winner.text)
    assert len(stored) == 10 and {passwords.recovery_hash(person, c) for c in shown} == stored


def test_a_counter_qr_starts_one_visit(live_url: str, engine: Engine, runtime: Runtime, container: Container, pii: PiiVault,
                                      person: str) -> None:
    username = f"clerk-{secrets.token_hex(4)}"
    with session_scope(engine) as session:
        counter.add_staff(session, pii, username=username, name="窗口二", id_number=person_id(), password=PASSWORD,
                          roles=["counter"], hall="HALL-9", actor="test", now=_now())
    with session_scope(engine) as session:
        staff = login.login_password(session, None, login_name=username, password=PASSWORD, now=_now(), staff=True)
    with session_scope(engine) as session:
        citizen = session.get(LoginSession, _session_cookie(engine, person).split(".")[0])
        assert citizen is not None
        qr = counter.issue_qr(session, container.tokens, citizen, consent=False, now=_now()).token
    cookies = [{STAFF_COOKIE: staff.session.cookie}] * WAYS
    responses = race(lambda http: http.post("/counter/scan", data={"qr": qr}), cookies=cookies, base_url=live_url)
    one_winner(responses, lambda r: r.status_code == 303 and r.headers["location"].startswith("/counter/visits/"))
    with session_scope(engine) as session:
        assert len(session.exec(select(CounterVisit).where(CounterVisit.account_id == person)).all()) == 1

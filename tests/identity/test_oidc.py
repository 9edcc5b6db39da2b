"""The OpenID Connect provider against the running service: authlib completes code + PKCE, jwcrypto
checks the ID token with our published JWKS; refresh rotation and reuse detection, revocation,
introspection, and the requests that must fail."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from jwcrypto import jwk, jwt
from sqlalchemy.engine import Engine
from sqlmodel import select

from audit.models import AuditEvent
from certificates.holders import PiiVault
from ecert.db import session_scope
from identity import accounts, oidc
from tests.identity.conftest import PASSWORD, person_id, phone_number

REDIRECT = "http://localhost:8765/callback"


@pytest.fixture
def party(engine: Engine) -> oidc.NewRelyingParty:
    with session_scope(engine) as session:
        return oidc.register_relying_party(session, name="Social security app", redirect_uris=[REDIRECT],
                                           scopes=["openid", "profile"], actor="test", now=dt.datetime.now(dt.timezone.utc))


@pytest.fixture
def person(engine: Engine, pii: PiiVault) -> tuple[str, str]:
    id_number = person_id()
    with session_scope(engine) as session:
        view = accounts.register_person(session, pii, name="赵六", id_number=id_number, phone=phone_number(),
                                        password=PASSWORD, now=dt.datetime.now(dt.timezone.utc))
    return view.id, id_number


def _browser(live_url: str, id_number: str) -> httpx.Client:
    browser = httpx.Client(base_url=live_url)
    response = browser.post("/portal/login", data={"login_name": id_number, "password": PASSWORD, "next": "/portal"})
    assert response.status_code == 303, response.text
    return browser


def _authorize(browser: httpx.Client, url: str) -> str:
    response = browser.get(url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def _rp(live_url: str, party: oidc.NewRelyingParty) -> OAuth2Client:
    return OAuth2Client(party.party.client_id, party.secret, scope="openid profile", redirect_uri=REDIRECT,
                        code_challenge_method="S256", token_endpoint=f"{live_url}/oauth/token")


def _code_flow(live_url: str, party: oidc.NewRelyingParty, id_number: str) -> tuple[OAuth2Client, dict[str, object], str]:
    rp, verifier, nonce = _rp(live_url, party), secrets.token_urlsafe(48), secrets.token_urlsafe(12)
    url, state = rp.create_authorization_url(f"{live_url}/oauth/authorize", code_verifier=verifier, nonce=nonce)
    location = _authorize(_browser(live_url, id_number), url)
    assert location.startswith(REDIRECT + "?") and parse_qs(urlsplit(location).query)["state"] == [state]
    token = rp.fetch_token(f"{live_url}/oauth/token", authorization_response=location, code_verifier=verifier)
    return rp, dict(token), nonce


def test_discovery(live_url: str) -> None:
    config = httpx.get(f"{live_url}/.well-known/openid-configuration").json()
    assert config["issuer"] == "http://ecert.test" and config["code_challenge_methods_supported"] == ["S256"]
    assert config["id_token_signing_alg_values_supported"] == ["ES256"] and "pwd+totp" in config["acr_values_supported"]


def test_authlib_code_flow_with_pkce(live_url: str, party: oidc.NewRelyingParty, person: tuple[str, str], engine: Engine) -> None:
    account_id, id_number = person
    rp, token, nonce = _code_flow(live_url, party, id_number)
    assert token["token_type"] == "Bearer" and token["scope"] == "openid profile" and token["refresh_token"]
    keys = jwk.JWKSet.from_json(httpx.get(f"{live_url}/.well-known/jwks.json").text)
    id_token = jwt.JWT(jwt=str(token["id_token"]), key=keys, algs=["ES256"], expected_type="JWS",
                       check_claims={"iss": "http://ecert.test", "aud": party.party.client_id, "sub": account_id, "exp": None})
    claims = json.loads(id_token.claims)
    assert claims["nonce"] == nonce and claims["acr"] == "pwd" and claims["amr"] == ["pwd"]
    access = json.loads(jwt.JWT(jwt=str(token["access_token"]), key=keys, algs=["ES256"], expected_type="JWS").claims)
    assert access["sub"] == account_id and access["kind"] == "person" and "dept" not in access
    info = rp.get(f"{live_url}/oauth/userinfo").json()
    assert info["sub"] == account_id and info["name"] == "赵六" and info["assurance"] == "self"
    assert id_number not in json.dumps(info)
    with session_scope(engine) as session:
        issued = session.exec(select(AuditEvent).where(AuditEvent.target == f"account:{account_id}",
                                                       AuditEvent.action == "identity.token.issue")).all()
        assert [e.details["grant"] for e in issued] == ["authorization_code"]


def test_refresh_rotation_and_reuse_revokes_the_family(live_url: str, party: oidc.NewRelyingParty, person: tuple[str, str]) -> None:
    rp, token, _ = _code_flow(live_url, party, person[1])
    first_refresh = str(token["refresh_token"])
    rotated = rp.refresh_token(f"{live_url}/oauth/token", refresh_token=first_refresh)
    assert rotated["refresh_token"] != first_refresh and rotated["id_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first_refresh}
    reuse = httpx.post(f"{live_url}/oauth/token", data=form, auth=(party.party.client_id, party.secret or ""))
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    form["refresh_token"] = rotated["refresh_token"]  # the legitimate newest one is dead too
    after = httpx.post(f"{live_url}/oauth/token", data=form, auth=(party.party.client_id, party.secret or ""))
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


def test_revocation_and_introspection(live_url: str, party: oidc.NewRelyingParty, person: tuple[str, str]) -> None:
    _, token, _ = _code_flow(live_url, party, person[1])
    auth = (party.party.client_id, party.secret or "")
    active = httpx.post(f"{live_url}/oauth/introspect", data={"token": token["access_token"]}, auth=auth).json()
    assert active["active"] is True and active["sub"] == person[0] and active["acr"] == "pwd" and active["kind"] == "person"
    refresh = httpx.post(f"{live_url}/oauth/introspect", data={"token": token["refresh_token"]}, auth=auth).json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    for name in ("access_token", "refresh_token"):
        assert httpx.post(f"{live_url}/oauth/revoke", data={"token": token[name]}, auth=auth).status_code == 200
        assert httpx.post(f"{live_url}/oauth/introspect", data={"token": token[name]}, auth=auth).json() == {"active": False}
    assert httpx.post(f"{live_url}/oauth/revoke", data={"token": "junk"}, auth=auth).status_code == 200  # RFC 7009 §2.2
    wrong = httpx.post(f"{live_url}/oauth/introspect", data={"token": token["access_token"]}, auth=(party.party.client_id, "x"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    gone = httpx.get(f"{live_url}/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert gone.status_code == 401


def test_public_client_uses_pkce_alone(live_url: str, engine: Engine, person: tuple[str, str]) -> None:
    with session_scope(engine) as session:
        public = oidc.register_relying_party(session, name="Mobile app", redirect_uris=[REDIRECT], confidential=False,
                                             actor="test", now=dt.datetime.now(dt.timezone.utc))
    assert public.secret is None
    rp = OAuth2Client(public.party.client_id, None, scope="openid", redirect_uri=REDIRECT, code_challenge_method="S256",
                      token_endpoint_auth_method="none")
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(f"{live_url}/oauth/authorize", code_verifier=verifier)
    location = _authorize(_browser(live_url, person[1]), url)
    token = rp.fetch_token(f"{live_url}/oauth/token", authorization_response=location, code_verifier=verifier)
    assert token["access_token"] and token["id_token"]


def _params(party: oidc.NewRelyingParty, **overrides: str) -> dict[str, str]:
    params = {"client_id": party.party.client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
              "state": "s1", "code_challenge": create_s256_code_challenge("v" * 50), "code_challenge_method": "S256"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


def test_bad_authorization_requests(live_url: str, party: oidc.NewRelyingParty, person: tuple[str, str]) -> None:
    browser = _browser(live_url, person[1])
    for bad in ({"redirect_uri": REDIRECT + "/x"}, {"redirect_uri": "http://localhost:8765/callback?x=1"}, {"client_id": "rp_nope"}):
        response = browser.get("/oauth/authorize", params=_params(party, **bad))
        assert response.status_code == 400 and "location" not in response.headers  # never redirect to an unchecked URI
    for bad, error in (({"code_challenge_method": "plain"}, "invalid_request"), ({"code_challenge": ""}, "invalid_request"),
                       ({"scope": "profile"}, "invalid_scope"), ({"scope": "openid licences:own"}, "invalid_scope"),
                       ({"response_type": "token"}, "unsupported_response_type")):
        response = browser.get("/oauth/authorize", params=_params(party, **bad))
        assert response.status_code == 302, bad
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["error"] == [error] and query["state"] == ["s1"]
    anonymous = httpx.get(f"{live_url}/oauth/authorize", params=_params(party))
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/portal/login?next=")
    none = httpx.get(f"{live_url}/oauth/authorize", params=_params(party, prompt="none"))
    assert parse_qs(urlsplit(none.headers["location"]).query)["error"] == ["login_required"]


def test_codes_are_one_time_and_bound(live_url: str, party: oidc.NewRelyingParty, person: tuple[str, str]) -> None:
    verifier = secrets.token_urlsafe(48)
    params = _params(party, code_challenge=create_s256_code_challenge(verifier))
    code = parse_qs(urlsplit(_authorize(_browser(live_url, person[1]), f"{live_url}/oauth/authorize?" +
                                        str(httpx.QueryParams(params)))).query)["code"][0]
    auth = (party.party.client_id, party.secret or "")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "w" * 50}
    assert httpx.post(f"{live_url}/oauth/token", data=form, auth=auth).json()["error"] == "invalid_grant"  # wrong verifier
    form["code_verifier"] = verifier
    assert httpx.post(f"{live_url}/oauth/token", data={**form, "redirect_uri": REDIRECT + "2"}, auth=auth).status_code == 400
    ok = httpx.post(f"{live_url}/oauth/token", data=form, auth=auth)
    assert ok.status_code == 200, ok.text
    again = httpx.post(f"{live_url}/oauth/token", data=form, auth=auth)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    refresh = {"grant_type": "refresh_token", "refresh_token": ok.json()["refresh_token"]}
    assert httpx.post(f"{live_url}/oauth/token", data=refresh, auth=auth).json()["error"] == "invalid_grant"  # code replay revoked it

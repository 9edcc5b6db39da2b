"""The token endpoint, the JWKS and /api/v1/identity/verify over HTTP, with real clients and Vault."""

from __future__ import annotations

import base64
import json
import logging

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from jwcrypto import jwk, jwt
from sqlmodel import Session

from audit.models import AuditEvent
from ecert.container import Container
from ecert.runtime import Runtime
from tests.identity.conftest import bearer, new_client, token_for


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_client_secret_basic_and_post_both_work(client: TestClient, runtime: Runtime, uid: str) -> None:
    new = new_client(runtime, f"D{uid.upper()}", ["licences:read", "licences:issue"])
    by_basic = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=_basic(new.client.client_id, new.secret))
    assert by_basic.status_code == 200, by_basic.text
    assert by_basic.headers["cache-control"] == "no-store"
    body = by_basic.json()
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 900, "licences:read licences:issue")
    by_post = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "licences:read",
                                                "client_id": new.client.client_id, "client_secret": new.secret})
    assert by_post.status_code == 200 and by_post.json()["scope"] == "licences:read"


def test_the_issued_token_verifies_with_the_published_jwks(client: TestClient, runtime: Runtime, uid: str) -> None:
    department = f"D{uid.upper()}"
    new = new_client(runtime, department, ["licences:read"])
    token = token_for(client, new)
    issuer = runtime.settings.public_url
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200 and "max-age" in response.headers["cache-control"]
    checked = jwt.JWT(jwt=token, key=jwk.JWKSet.from_json(response.text), algs=["ES256"],
                      check_claims={"iss": issuer, "aud": f"{issuer}/api", "exp": None})
    claims = json.loads(checked.claims)
    assert (claims["sub"], claims["client_id"], claims["dept"]) == (new.client.client_id, new.client.client_id, department)


@pytest.mark.parametrize("change", ["wrong secret", "unknown client", "disabled client"])
def test_bad_credentials_get_the_same_invalid_client_answer(client: TestClient, runtime: Runtime, uid: str,
                                                            change: str) -> None:
    new = new_client(runtime, f"D{uid.upper()}", ["licences:read"])
    client_id, secret = new.client.client_id, new.secret
    if change == "wrong secret":
        secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    elif change == "unknown client":
        client_id = "cl_" + "0" * 20
    else:
        from ecert.db import session_scope
        from identity.clients import disable_client
        with session_scope(runtime.engine) as session:
            disable_client(session, client_id, actor="test", now=runtime.clock.now())
    for headers, data in ((_basic(client_id, secret), {}), ({}, {"client_id": client_id, "client_secret": secret})):
        response = client.post("/oauth/token", data={"grant_type": "client_credentials", **data}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_client", "error_description": "client authentication failed"}
        assert response.headers["www-authenticate"].startswith("Basic")


def test_failed_authentication_is_audited_without_the_secret(client: TestClient, runtime: Runtime, uid: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    new = new_client(runtime, f"D{uid.upper()}", ["licences:read"])
    wrong = new.secret[::-1]
    client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": new.client.client_id,
                                      "client_secret": wrong})
    token_for(client, new)
    with Session(runtime.engine) as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.target == f"client:{new.client.client_id}")
                                 .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["identity.client.create", "identity.client.auth-failed", "identity.token.issue"]
    assert events[1].details == {"reason": "wrong-secret"}
    for text in (caplog.text, " ".join(f"{e.actor}{e.target}{e.details}" for e in events)):
        assert new.secret not in text and wrong not in text


def test_oauth_errors_for_malformed_requests(client: TestClient, runtime: Runtime, uid: str) -> None:
    new = new_client(runtime, f"D{uid.upper()}", ["licences:read"])
    creds = {"client_id": new.client.client_id, "client_secret": new.secret}
    cases = [
        ({"grant_type": "password", **creds}, {}, 400, "unsupported_grant_type"),
        (creds, {}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", **creds, "scope": "licences:issue"}, {}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", **creds, "scope": "platform:admin"}, {}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", **creds}, _basic(new.client.client_id, new.secret), 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, {"Authorization": "Basic !!!"}, 401, "invalid_client"),
    ]
    for data, headers, status, error in cases:
        response = client.post("/oauth/token", data=data, headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, error), (data, headers)


def test_verify_answers_active_with_the_identity(client: TestClient, runtime: Runtime, uid: str) -> None:
    department = f"D{uid.upper()}"
    checker = new_client(runtime, department, ["identity:verify"])
    subject = new_client(runtime, department, ["licences:read", "licences:issue"])
    caller = bearer(token_for(client, checker))
    token = token_for(client, subject, "licences:read")
    answer = client.post("/api/v1/identity/verify", data={"token": token}, headers=caller)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["active"] is True and body["sub"] == subject.client.client_id and body["kind"] == "client"
    assert (body["scope"], body["dept"], body["acr"], body["token_type"]) == ("licences:read", department, "client-secret", "Bearer")
    as_json = client.post("/api/v1/identity/verify", json={"token": token}, headers=caller)
    assert as_json.json() == body
    for bad in (token[:-4] + "AAAA", "not-a-token", token.replace(".", "", 1)):
        assert client.post("/api/v1/identity/verify", data={"token": bad}, headers=caller).json() == {"active": False}


def test_verify_needs_a_caller_with_identity_verify(client: TestClient, runtime: Runtime, uid: str) -> None:
    other = new_client(runtime, f"D{uid.upper()}", ["licences:read"])
    token = token_for(client, other)
    assert client.post("/api/v1/identity/verify", data={"token": token}).status_code == 401
    refused = client.post("/api/v1/identity/verify", data={"token": token}, headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/insufficient-scope"
    checker = new_client(runtime, f"D{uid.upper()}", ["identity:verify"])
    missing = client.post("/api/v1/identity/verify", data={}, headers=bearer(token_for(client, checker)))
    assert missing.status_code == 422


def test_metadata_names_the_endpoints(client: TestClient, runtime: Runtime, uid: str) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == runtime.settings.public_url
    assert meta["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert "licences:issue" in meta["scopes_supported"]
    new = new_client(runtime, f"D{uid.upper()}", ["licences:read"])
    path = meta["token_endpoint"].removeprefix(meta["issuer"])
    issued = client.post(path, data={"grant_type": "client_credentials"}, headers=_basic(new.client.client_id, new.secret))
    keys = client.get(meta["jwks_uri"].removeprefix(meta["issuer"])).text
    jwt.JWT(jwt=issued.json()["access_token"], key=jwk.JWKSet.from_json(keys), algs=["ES256"])


def test_rotation_keeps_old_tokens_working_over_http(client: TestClient, runtime: Runtime, container: Container, uid: str) -> None:

    department = f"D{uid.upper()}"
    checker = new_client(runtime, department, ["identity:verify"])
    old = token_for(client, checker)
    old_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "=="))["kid"]
    container.tokens.keys.rotate()
    new = token_for(client, checker)
    new_kid = json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"]
    assert new_kid != old_kid and new_kid.startswith("token-signing-v")
    keyset = jwk.JWKSet.from_json(client.get("/.well-known/jwks.json").text)
    assert {old_kid, new_kid} <= {key["kid"] for key in keyset}
    for token in (old, new):
        jwt.JWT(jwt=token, key=keyset, algs=["ES256"])
        answer = client.post("/api/v1/identity/verify", data={"token": token}, headers=bearer(old))
        assert answer.json()["active"] is True

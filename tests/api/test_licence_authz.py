"""Who may do what to e-licences, through HTTP with real access tokens (department isolation, scopes, admins)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jose import jws
from jose.backends import ECKey
from ecert.container import Container
from ecert.runtime import Runtime
from tests.support.licences import BUSINESS_TYPE, uscc
from tests.identity.conftest import bearer, new_client, token_for

ALL = ["licences:issue", "licences:manage", "licences:read", "types:manage"]


class Department:
    """A department with a full-powered client, a BL licence type and one issued licence."""

    def __init__(self, client: TestClient, runtime: Runtime, code: str) -> None:
        self.code = code
        self.headers = bearer(token_for(client, new_client(runtime, code, ALL)))
        own_type = {**BUSINESS_TYPE, "code": f"T{code[0]}{code[-4:]}"}
        self.type_code = own_type["code"]
        for spec in (BUSINESS_TYPE, own_type):
            response = client.post("/api/v1/licence-types", json=spec, headers=self.headers)
            assert response.status_code == 201, response.text
        self.licence = issue(client, self.headers, "BL")
        assert self.licence.status_code == 201, self.licence.text
        self.licence_id = self.licence.json()["id"]


def issue(client: TestClient, headers: dict[str, str], type_code: str, **extra: Any) -> Any:
    body = {"type_code": type_code, "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
            "fields": {"company": "示例有限公司", "capital": 100}, **extra}
    return client.post("/api/v1/licences", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})


@pytest.fixture
def two(client: TestClient, runtime: Runtime, uid: str) -> tuple[Department, Department]:
    return Department(client, runtime, f"A{uid.upper()}"), Department(client, runtime, f"B{uid.upper()}")


def test_a_department_cannot_touch_another_departments_licences(client: TestClient, two: tuple[Department, Department]) -> None:
    a, b = two
    assert client.get(f"/api/v1/licences/{a.licence_id}", headers=a.headers).status_code == 200
    assert client.get(f"/api/v1/licences/{b.licence_id}", headers=a.headers).status_code == 404
    assert client.get(f"/api/v1/licences/{b.licence_id}/pdf", headers=a.headers).status_code == 404
    assert client.get("/api/v1/licences", params={"department": b.code}, headers=a.headers).status_code == 403
    listed = client.get("/api/v1/licences", headers=a.headers).json()["items"]
    assert [item["id"] for item in listed] == [a.licence_id]
    for action in ("revoke", "suspend"):
        response = client.post(f"/api/v1/licences/{b.licence_id}/{action}", json={"reason": "x"}, headers=a.headers)
        assert response.status_code == 404
    amend = client.post(f"/api/v1/licences/{b.licence_id}/amend", json={"fields": {"company": "X", "capital": 1}},
                        headers={**a.headers, "Idempotency-Key": "amend-other"})
    assert amend.status_code == 404
    assert client.get(f"/api/v1/licences/{b.licence_id}", headers=b.headers).json()["status"] == "valid"


def test_a_department_cannot_issue_for_another_or_use_its_types(client: TestClient, two: tuple[Department, Department]) -> None:
    a, b = two
    assert issue(client, a.headers, "BL", department=b.code).status_code == 403
    foreign = issue(client, a.headers, b.type_code)
    assert foreign.status_code in (403, 404) and foreign.json()["type"] in (
        "/problems/unknown-licence-type", "/problems/foreign-licence-type")
    row = {"holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
           "fields": {"company": "示例有限公司", "capital": 1}}
    bulk = client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "department": b.code, "rows": [row]},
                       headers={**a.headers, "Idempotency-Key": "bulk-other"})
    assert bulk.status_code == 403, bulk.text
    assert client.post(f"/api/v1/licence-types/{b.type_code}/disable", params={"department": b.code},
                       headers=a.headers).status_code == 403
    assert client.post("/api/v1/licence-types", json={**BUSINESS_TYPE, "department": b.code},
                       headers=a.headers).status_code == 403
    assert client.get("/api/v1/licence-types", params={"department": b.code}, headers=a.headers).status_code == 403
    own = client.get("/api/v1/licence-types", headers=a.headers).json()["items"]
    assert {t["department"] for t in own} == {a.code}


def test_scopes_limit_what_a_client_does(client: TestClient, runtime: Runtime, two: tuple[Department, Department]) -> None:
    a, _ = two
    reader = bearer(token_for(client, new_client(runtime, a.code, ["licences:read", "licences:issue"])))
    assert client.get(f"/api/v1/licences/{a.licence_id}", headers=reader).status_code == 200
    refused = client.post(f"/api/v1/licences/{a.licence_id}/revoke", json={"reason": "x"}, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/insufficient-scope"
    assert refused.json()["required_scopes"] == ["licences:manage"]
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert client.post(f"/api/v1/licence-types/{a.type_code}/disable", headers=reader).status_code == 403
    narrowed = bearer(token_for(client, new_client(runtime, a.code, ALL), "licences:read"))
    assert issue(client, narrowed, "BL").status_code == 403  # the token carries only the scope asked for
    manager = bearer(token_for(client, new_client(runtime, a.code, ["licences:manage"])))
    revoked = client.post(f"/api/v1/licences/{a.licence_id}/revoke", json={"reason": "fraud"}, headers=manager)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"


def test_no_or_bad_tokens_are_unauthenticated(client: TestClient, runtime: Runtime, container: Container, two: tuple[Department, Department]) -> None:
    a, _ = two
    url = f"/api/v1/licences/{a.licence_id}"
    missing = client.get(url)
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "/problems/unauthenticated"
    assert missing.headers["www-authenticate"] == 'Bearer realm="ecert"'
    assert client.get(url, headers={"Authorization": "Basic abc"}).status_code == 401
    good = a.headers["Authorization"].split()[1]
    header = jws.get_unverified_header(good)
    claims = {**json.loads(jws.get_unverified_claims(good)), "scope": "platform:admin"}
    claims.pop("dept")
    forger = ec.generate_private_key(ec.SECP256R1())  # a throwaway local key, playing the attacker
    forged = jws.sign(claims, ECKey(forger, "ES256"), headers={"kid": header["kid"], "typ": "at+jwt"}, algorithm="ES256")
    for token in (forged, good[:-6] + "AAAAAA", good + "x", "garbage"):
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith('Bearer realm="ecert", error="invalid_token"')
    expired = container.tokens.issue(
        subject="cl_x", scopes=ALL, client_id="cl_x", department=a.code, acr="client-secret",
        now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1),
    ).token
    assert client.get(url, headers=bearer(expired)).json()["detail"] == "the token has expired"


def test_an_admin_acts_for_any_department_it_names(client: TestClient, runtime: Runtime, two: tuple[Department, Department]) -> None:
    a, b = two
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    assert client.get(f"/api/v1/licences/{b.licence_id}", headers=admin).status_code == 200
    assert issue(client, admin, "BL").status_code == 403  # must name the department
    issued = issue(client, admin, "BL", department=a.code)
    assert issued.status_code == 201 and issued.json()["department"] == a.code
    listed = client.get("/api/v1/licences", params={"department": b.code}, headers=admin).json()["items"]
    assert [item["id"] for item in listed] == [b.licence_id]
    revoked = client.post(f"/api/v1/licences/{b.licence_id}/revoke", json={"reason": "court order"}, headers=admin)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert client.post(f"/api/v1/licence-types/{a.type_code}/disable", params={"department": a.code},
                       headers=admin).status_code == 200


def test_bulk_jobs_stay_within_their_department(client: TestClient, two: tuple[Department, Department]) -> None:
    a, b = two
    row = {"holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
           "fields": {"company": "示例有限公司", "capital": 1}}
    submitted = client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "rows": [row]},
                            headers={**b.headers, "Idempotency-Key": "bulk-own"})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    assert client.get(f"/api/v1/bulk-jobs/{job}", headers=b.headers).status_code == 200
    for method, path in (("GET", f"/api/v1/bulk-jobs/{job}"), ("GET", f"/api/v1/bulk-jobs/{job}/items"),
                         ("POST", f"/api/v1/bulk-jobs/{job}/cancel")):
        assert client.request(method, path, headers=a.headers).status_code == 404, path

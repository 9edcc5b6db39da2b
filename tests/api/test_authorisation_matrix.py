"""Every route in the OpenAPI document x every role: anonymous, department A, department B, platform admin.

Public routes are listed here by hand (so a new route is private until someone decides otherwise). Every other route
refuses anonymous callers and forged tokens with 401; department B cannot read A's resources (403/404) and cannot
change them (nothing 2xx, and A's licence, job, type and client are unchanged afterwards); department clients cannot
use platform-admin routes; the platform admin is never refused for lack of authentication.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecert.runtime import Runtime
from tests.api.test_licence_authz import ALL, Department
from tests.identity.conftest import bearer, new_client, token_for

PUBLIC = re.compile(
    r"^(/healthz|/readyz|/problems/.*|/\.well-known/.*|/pki/.*|/status-lists.*|/transparency/.*|/v/\{token\}|/verify"
    r"|/api/v1/verify/.*|/api/v1/trust-bundle|/oauth/(authorize|token|introspect|revoke))$"
)
ADMIN_ONLY = re.compile(r"^/api/v1/(departments.*|certificates/.*)$")  # POSTs; reading departments is licences:read
FORGED = "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vbmUifQ.eyJzdWIiOiJ4In0.c2ln"


def _admin_only(method: str, path: str) -> bool:
    return method == "POST" and bool(ADMIN_ONLY.match(path))


def _routes(client: TestClient) -> list[tuple[str, str]]:
    doc = client.get("/openapi.json").json()
    return sorted((method.upper(), path) for path, ops in doc["paths"].items() for method in ops)


def _fill(path: str, a: Department, extra: dict[str, str]) -> str:
    values = {"licence_id": a.licence_id, "code": a.code if "/departments/" in path else a.type_code,
              "serial": "01", **extra}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(client: TestClient, method: str, url: str, headers: dict[str, str]) -> Any:
    if method == "GET":
        return client.get(url, headers=headers)
    return client.request(method, url, headers={**headers, "Idempotency-Key": "matrix"}, json={})


@pytest.fixture
def world(client: TestClient, runtime: Runtime, uid: str) -> dict[str, Any]:
    a, b = Department(client, runtime, f"A{uid.upper()}"), Department(client, runtime, f"B{uid.upper()}")
    job = client.post("/api/v1/bulk-jobs", headers={**a.headers, "Idempotency-Key": "world"}, json={"type_code": a.type_code, "rows": [
        {"holder": {"kind": "enterprise", "name": "x", "id_number": "bad"}, "fields": {}}]})
    assert job.status_code == 202, job.text
    own_client = new_client(runtime, a.code, ["licences:read"], name="A's other system")
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    extra = {"job_id": job.json()["id"], "client_id": own_client.client.client_id, "name": "root",
             "token": "x", "slug": "x", "encoded": "x", "tree_size": "1", "list_id": "1"}
    return {"a": a, "b": b, "admin": admin, "extra": extra}


def test_public_and_private_routes_are_all_known(client: TestClient) -> None:
    routes = _routes(client)
    assert len(routes) > 50
    private = [r for r in routes if not PUBLIC.match(r[1])]
    assert any(p.startswith("/api/v1/licences") for _, p in private)
    assert ("GET", "/api/v1/verify/{token}") not in private


def test_every_private_route_refuses_anonymous_and_forged_tokens(client: TestClient, world: dict[str, Any]) -> None:
    failures = []
    for method, path in _routes(client):
        if PUBLIC.match(path):
            continue
        url = _fill(path, world["a"], world["extra"])
        for label, headers in (("anonymous", {}), ("forged", bearer(FORGED)), ("garbage", {"Authorization": "Basic x"})):
            response = _call(client, method, url, headers)
            if response.status_code != 401:
                failures.append(f"{label} {method} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_department_b_cannot_read_or_change_department_a(client: TestClient, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    before = client.get(f"/api/v1/licences/{a.licence_id}", headers=a.headers).json()
    failures = []
    for method, path in _routes(client):
        if PUBLIC.match(path) or "{" not in path and method == "GET":
            continue
        if "{" not in path:  # collection POSTs create in the caller's own department: covered by the admin-only check
            continue
        response = _call(client, method, _fill(path, a, world["extra"]), b.headers)
        allowed = {403, 404} if method == "GET" or _admin_only(method, path) else {403, 404, 409, 422}
        if response.status_code not in allowed:
            failures.append(f"B {method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)
    after = client.get(f"/api/v1/licences/{a.licence_id}", headers=a.headers).json()
    assert (after["status"], after["fields"], after["superseded_by"]) == (before["status"], before["fields"], None)
    job = client.get(f"/api/v1/bulk-jobs/{world['extra']['job_id']}", headers=a.headers).json()
    assert job["cancel_requested"] is False
    types = client.get("/api/v1/licence-types", headers=a.headers).json()
    listed = types["items"] if isinstance(types, dict) else types
    assert all(t.get("active", True) for t in listed if t.get("code") == a.type_code)
    mine = client.get(f"/api/v1/clients/{world['extra']['client_id']}", headers=world["admin"]).json()
    assert not mine.get("disabled_at")
    assert client.get("/api/v1/licences", headers=b.headers).json()["items"] == [
        item for item in client.get("/api/v1/licences", headers=b.headers).json()["items"] if item["department"] == b.code]


def test_department_clients_cannot_use_admin_routes(client: TestClient, world: dict[str, Any]) -> None:
    failures = []
    for method, path in _routes(client):
        if _admin_only(method, path):
            response = _call(client, method, _fill(path, world["a"], world["extra"]), world["a"].headers)
            if response.status_code not in (403, 404):
                failures.append(f"A {method} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_platform_admin_is_authenticated_everywhere(client: TestClient, world: dict[str, Any]) -> None:
    failures = []
    for method, path in _routes(client):
        if PUBLIC.match(path) or path.startswith("/oauth/userinfo") or path == "/api/v1/identity/verify":
            continue  # userinfo wants a person's token, identity/verify a department client's scope
        response = _call(client, method, _fill(path, world["a"], world["extra"]), world["admin"])
        if response.status_code == 401 or response.status_code >= 500:
            failures.append(f"admin {method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)


def test_holder_reads_and_identified_checks(client: TestClient, world: dict[str, Any]) -> None:
    """``/api/v1/me/licences`` is a holder's read through an app they consented to: department clients and the platform
    admin are refused (403), anonymous and forged callers 401. Verification stays public, but a caller that sends a
    token is identified: a forged one is refused (401) and a real one must declare its purpose (422)."""
    assert client.get("/api/v1/me/licences").status_code == 401
    assert client.get("/api/v1/me/licences", headers=bearer(FORGED)).status_code == 401
    for headers in (world["a"].headers, world["admin"]):
        assert client.get("/api/v1/me/licences", headers=headers).status_code == 403
    token = "AAAAAAAAAAAAAAAAAAAAAAAA"
    assert client.get(f"/api/v1/verify/{token}").status_code == 404  # anonymous: public
    assert client.get(f"/api/v1/verify/{token}?purpose=service", headers=bearer(FORGED)).status_code == 401
    assert client.get(f"/api/v1/verify/{token}", headers=world["a"].headers).status_code == 422
    assert client.get(f"/api/v1/verify/{token}?purpose=service", headers=world["a"].headers).status_code == 404
    assert client.post("/api/v1/verify/pdf", headers=bearer(FORGED), content=b"%PDF").status_code == 401


def test_a_disabled_department_gets_no_tokens_and_changes_nothing(client: TestClient, runtime: Runtime,
                                                                  world: dict[str, Any], uid: str) -> None:
    """Disabling a department stops it at once in this process: its clients get no new token (OAuth
    ``unauthorized_client``), and every write route refuses the tokens they already hold (403
    ``department-disabled``, or ``insufficient-scope`` where the client never had the scope); reads still work."""
    d = Department(client, runtime, f"D{uid.upper()}")
    other = new_client(runtime, d.code, ALL, name="D's other system")
    job = client.post("/api/v1/bulk-jobs", headers={**d.headers, "Idempotency-Key": f"job-{uid}"}, json={
        "type_code": d.type_code, "rows": [{"holder": {"kind": "enterprise", "name": "x", "id_number": "bad"}, "fields": {}}]})
    assert job.status_code == 202, job.text
    before = client.get(f"/api/v1/licences/{d.licence_id}", headers=d.headers).json()
    assert client.post(f"/api/v1/departments/{d.code}/disable", headers=world["admin"]).status_code == 200

    form = {"grant_type": "client_credentials", "client_id": other.client.client_id, "client_secret": other.secret}
    refused = client.post("/oauth/token", data=form)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client", refused.text
    extra = {**world["extra"], "job_id": job.json()["id"], "client_id": other.client.client_id}
    failures, stopped = [], []
    for method, path in _routes(client):
        if PUBLIC.match(path) or method == "GET" or path == "/oauth/userinfo":  # userinfo: a person's read
            continue
        response = _call(client, method, _fill(path, d, extra), d.headers)
        kind = response.json().get("type") if response.headers.get("content-type", "").endswith("json") else None
        if response.status_code != 403 or kind not in ("/problems/department-disabled", "/problems/insufficient-scope"):
            failures.append(f"disabled {method} {path}: {response.status_code} {response.text[:120]}")
        elif kind == "/problems/department-disabled":
            stopped.append(path)
    assert not failures, "\n".join(failures)
    for path in ("/api/v1/licences", "/api/v1/licences/{licence_id}/amend", "/api/v1/licences/{licence_id}/revoke",
                 "/api/v1/licence-types", "/api/v1/bulk-jobs", "/api/v1/bulk-jobs/{job_id}/cancel"):
        assert path in stopped, path
    after = client.get(f"/api/v1/licences/{d.licence_id}", headers=d.headers)
    assert after.status_code == 200  # reads are not writes
    assert (after.json()["status"], after.json()["fields"], after.json()["superseded_by"]) == (
        before["status"], before["fields"], None)
    assert client.get(f"/api/v1/bulk-jobs/{job.json()['id']}", headers=d.headers).json()["cancel_requested"] is False

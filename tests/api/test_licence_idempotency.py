"""Every issuing POST needs an Idempotency-Key; a retry with it answers with the first result, never a second one."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from ecert.runtime import Runtime
from tests.api.test_licence_authz import Department
from tests.certificates.conftest import uscc


def _body(**extra: Any) -> dict[str, Any]:
    return {"type_code": "BL", "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
            "fields": {"company": "示例有限公司", "capital": 100}, **extra}


def test_issuing_without_a_key_is_refused_with_a_way_out(client: TestClient, runtime: Runtime, uid: str) -> None:
    dept = Department(client, runtime, f"I{uid.upper()}")
    row = {"holder": _body()["holder"], "fields": {"company": "x", "capital": 1}}
    attempts = [
        client.post("/api/v1/licences", json=_body(), headers=dept.headers),
        client.post("/api/v1/licences/with-document", data={"data": '{"type_code": "BL", "holder": {"kind": "enterprise",'
                    ' "name": "x", "id_number": "x"}, "fields": {}}'}, files={"file": ("x.pdf", b"%PDF-", "application/pdf")},
                    headers=dept.headers),
        client.post(f"/api/v1/licences/{dept.licence_id}/amend", json={"fields": {"company": "X", "capital": 1}},
                    headers=dept.headers),
        client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "rows": [row]}, headers=dept.headers),
        client.post("/api/v1/licences", json=_body(), headers={**dept.headers, "Idempotency-Key": " "}),
    ]
    for response in attempts:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "/problems/idempotency-key-required" and "Idempotency-Key" in problem["detail"]
    listed = client.get("/api/v1/licences", headers=dept.headers).json()["items"]
    assert [item["id"] for item in listed] == [dept.licence_id]  # nothing was issued, amended or queued
    assert client.get("/problems/idempotency-key-required").status_code == 200


def test_a_bulk_job_is_submitted_once_per_key(client: TestClient, runtime: Runtime, uid: str) -> None:
    dept = Department(client, runtime, f"J{uid.upper()}")
    rows = [{"holder": _body()["holder"], "fields": {"company": f"公司{i}", "capital": i}} for i in range(2)]
    headers = {**dept.headers, "Idempotency-Key": f"job-{uuid.uuid4().hex}"}
    first = client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "rows": rows}, headers=headers)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers, first.text
    spaced = '{ "rows" : %s ,"type_code":"BL" }' % str(rows).replace("'", '"')
    again = client.post("/api/v1/bulk-jobs", content=spaced, headers={**headers, "Content-Type": "application/json"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true", again.text
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "rows": rows[:1]}, headers=headers)
    assert other.status_code == 422 and other.json()["type"] == "/problems/idempotency-key-reused", other.text


def test_an_explicit_default_is_the_same_request(client: TestClient, runtime: Runtime, uid: str) -> None:
    dept = Department(client, runtime, f"E{uid.upper()}")
    headers = {**dept.headers, "Idempotency-Key": f"default-{uuid.uuid4().hex}"}
    body = _body()
    first = client.post("/api/v1/licences", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/licences", json={**body, "type_version": 1}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text

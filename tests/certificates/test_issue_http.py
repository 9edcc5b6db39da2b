"""Issuing over HTTP: instants keep their offsets, historical records are explicit, ordinary values never a 5xx."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecert.runtime import Runtime
from tests.certificates.conftest import BUSINESS_TYPE, uscc
from tests.identity.conftest import bearer, new_client, token_for

SCOPES = ["licences:issue", "licences:manage", "licences:read", "types:manage"]


@pytest.fixture
def headers(client: TestClient, runtime: Runtime, uid: str) -> dict[str, str]:
    auth = bearer(token_for(client, new_client(runtime, f"H{uid.upper()}", SCOPES)))
    assert client.post("/api/v1/licence-types", json=BUSINESS_TYPE, headers=auth).status_code == 201
    return auth


def issue(client: TestClient, headers: dict[str, str], **extra: Any) -> Any:
    body = {"type_code": "BL", "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
            "fields": {"company": "示例有限公司", "capital": 100}, **extra}
    return client.post("/api/v1/licences", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})


def problem(response: Any, status: int, pointer: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert pointer in [e.get("pointer") for e in body.get("errors", [])], body
    return body


def test_an_offset_is_kept_on_issue_and_read_back(client: TestClient, headers: dict[str, str]) -> None:
    issued = issue(client, headers, valid_from="2026-01-01T00:00:00+08:00")
    assert issued.status_code == 201, issued.text
    assert issued.json()["valid_from"] == "2025-12-31T16:00:00+00:00"
    read = client.get(f"/api/v1/licences/{issued.json()['id']}", headers=headers).json()
    assert read["valid_from"] == "2025-12-31T16:00:00+00:00" and read["valid_until"] == "2030-12-31T16:00:00+00:00"
    assert read["issued_at"].endswith("+00:00") and read["history"][0]["effective_at"] == "2025-12-31T16:00:00+00:00"
    assert read["historical"] is False


def test_a_historical_record_is_explicit(client: TestClient, headers: dict[str, str]) -> None:
    problem(issue(client, headers, valid_from="2000-01-01T00:00:00+08:00"), 422, "#/valid_from")
    problem(issue(client, headers, historical=True), 422, "#/valid_from")  # its start is required
    imported = issue(client, headers, valid_from="2000-01-01T00:00:00+08:00", historical=True)
    assert imported.status_code == 201, imported.text
    view = imported.json()
    assert (view["historical"], view["status"], view["valid_until"]) == (True, "expired", "2004-12-31T16:00:00+00:00")
    history = client.get(f"/api/v1/licences/{view['id']}", headers=headers).json()["history"]
    assert history[0]["action"] == "import"


@pytest.mark.parametrize("extra, pointer", [
    ({"valid_from": "9995-01-01T00:00:00+00:00"}, "#/valid_from"),
    ({"valid_from": "1800-01-01T00:00:00+00:00", "historical": True}, "#/valid_from"),
    ({"valid_from": "2026-01-01T00:00:00"}, "#/valid_from"),
    ({"type_version": 2**63}, "#/type_version"),
    ({"type_version": 2**31}, "#/type_version"),
])
def test_ordinary_values_are_invalid_input_not_a_server_error(
    client: TestClient, headers: dict[str, str], extra: dict[str, Any], pointer: str
) -> None:
    problem(issue(client, headers, **extra), 422, pointer)


def test_the_verification_page_reads_times_in_the_deployment_zone(client: TestClient, headers: dict[str, str]) -> None:
    """Valid from midnight in Beijing is 1 January on the page, as on the PDF (not 31 December, the UTC day)."""
    issued = issue(client, headers, valid_from="2026-01-01T00:00:00+08:00").json()
    path = "/v/" + issued["verification_url"].rsplit("/v/", 1)[1]
    page = client.get(path, params={"lang": "en"}, headers={"Accept": "text/html"}).text
    assert "2026-01-01 – 2031-01-01" in page and "2025-12-31" not in page
    assert "(UTC+08:00)</footer>" in page


def test_the_portal_shows_a_historical_licence_as_expired_and_times_with_their_offset(
    client: TestClient, headers: dict[str, str]
) -> None:
    from tests.api.test_enterprise_agents import _register

    holder = _register(client, "enterprise")
    imported = issue(client, headers, valid_from="2000-01-01T00:00:00+08:00", historical=True,
                     holder={"kind": "enterprise", "name": "广州补录示例有限公司", "id_number": holder.id_number})
    assert imported.status_code == 201, imported.text
    page = client.get("/portal", params={"lang": "en"}, cookies=holder.cookies).text
    assert imported.json()["number"] in page
    assert "BL · Expired" in page and "BL · valid" not in page  # the status as of now, in the page's language
    assert "(UTC+08:00)" in page  # the sessions list: local time, labelled


def test_json_bodies_are_capped_before_parsing_and_utf8_only(client: TestClient, headers: dict[str, str]) -> None:
    import json

    limit = client.app.state.runtime.settings.max_json_bytes  # type: ignore[attr-defined]
    body = {"type_code": "BL", "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
            "fields": {"company": "示例有限公司", "capital": 100}}
    json_headers = {**headers, "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    big = json.dumps({**body, "fields": {"company": "x" * (limit + 1), "capital": 1}}).encode()
    refused = client.post("/api/v1/licences", content=big, headers=json_headers)
    assert refused.status_code == 413 and refused.json()["type"] == "/problems/payload-too-large"

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 1 << 20):
            yield big[start:start + (1 << 20)]

    assert client.post("/api/v1/licences", content=chunks(), headers=json_headers).status_code == 413
    utf16 = json.dumps(body, ensure_ascii=False).encode("utf-16")
    refused = client.post("/api/v1/licences", content=utf16, headers=json_headers)
    assert refused.status_code == 415 and refused.headers["content-type"].startswith("application/problem+json")
    latin = client.post("/api/v1/licences", content=json.dumps(body).encode(),
                        headers={**json_headers, "Content-Type": "application/json; charset=iso-8859-1"})
    assert latin.status_code == 415
    assert client.post("/api/v1/licences", content=json.dumps(body, ensure_ascii=False).encode(),
                       headers=json_headers).status_code == 201

"""Statistics over HTTP: a department sees its own numbers only; the platform sees all; latency percentiles."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.routes.statistics import _quantile
from ecert.runtime import Runtime
from tests.api.test_licence_authz import ALL, Department
from tests.identity.conftest import bearer, new_client, token_for


def test_departments_see_only_their_statistics(client: TestClient, runtime: Runtime, uid: str) -> None:
    a, b = Department(client, runtime, f"A{uid.upper()}"), Department(client, runtime, f"B{uid.upper()}")
    reader_a = bearer(token_for(client, new_client(runtime, a.code, ["stats:read"])))
    own = client.get("/api/v1/statistics", params={"metric": "certificates.licence.issue"}, headers=reader_a)
    assert own.status_code == 200, own.text
    assert {item["department"] for item in own.json()["items"]} == {a.code}
    assert sum(item["count"] for item in own.json()["items"]) == 1
    assert client.get("/api/v1/statistics", params={"department": b.code}, headers=reader_a).status_code == 403
    assert client.get("/api/v1/statistics", headers=a.headers).status_code == 403  # no stats:read scope
    assert client.get("/api/v1/statistics").status_code == 401

    grouped = client.get("/api/v1/statistics", params={"by": "department"}, headers=reader_a).json()["items"]
    assert {item["department"] for item in grouped} == {a.code}
    csv = client.get("/api/v1/statistics/export.csv", headers=reader_a)
    assert csv.status_code == 200 and csv.text.startswith("day,department,metric,dimension,count") and b.code not in csv.text
    page = client.get("/api/v1/statistics/dashboard", headers=reader_a)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and a.code in page.text

    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    everything = client.get("/api/v1/statistics", params={"metric": "certificates.licence.issue"}, headers=admin).json()
    assert {a.code, b.code} <= {item["department"] for item in everything["items"]}
    bad = client.get("/api/v1/statistics", params={"start": "2026-01-10", "end": "2026-01-01"}, headers=admin)
    assert bad.status_code == 422


def test_latency_percentiles_are_for_administrators(client: TestClient, runtime: Runtime) -> None:
    for _ in range(5):
        client.get("/healthz")
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    items = client.get("/api/v1/statistics/latency", headers=admin).json()["items"]
    health = next(i for i in items if i["route"] == "/healthz" and i["method"] == "GET")  # other tests send DELETE /healthz
    assert health["count"] >= 5 and health["p50_ms"] is not None and health["p50_ms"] <= health["p99_ms"]
    department = bearer(token_for(client, new_client(runtime, f"L{runtime.settings.port}X", ALL + ["stats:read"])))
    assert client.get("/api/v1/statistics/latency", headers=department).status_code == 403


def test_quantiles_interpolate_within_buckets() -> None:
    buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert _quantile(buckets, 0.5) == 0.01
    assert abs((_quantile(buckets, 0.7) or 0) - 0.055) < 1e-9
    assert _quantile([], 0.5) is None

"""Per-request metrics: label sets stay bounded whatever methods clients invent."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_invented_methods_are_counted_as_other(client: TestClient) -> None:
    for method in ("FOO", "BAR1", "PROPFIND"):
        assert client.request(method, "/healthz").status_code == 405
    metrics = client.get("/metrics").text
    assert 'method="FOO"' not in metrics and 'method="PROPFIND"' not in metrics
    assert 'ecert_http_requests_total{method="OTHER",route="/healthz",status="405"}' in metrics
    assert client.get("/healthz", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32

"""Faults against a real ``ecert serve`` (embedded OpenBao, SQLite): SIGKILL mid-issuance, Vault stopped.

After each fault: no licence without its sealed PDF, one licence per idempotency key, no lost or duplicated
bulk rows, the audit chain verifies and the service serves again without help.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.harness import licence_row
from tests.reliability.conftest import audit_verify, bao_process, kill_tree, token_for

pytestmark = pytest.mark.slow


def _issue(base: str, token: str, key: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/licences", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})


def _licences(database_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT id, number, idempotency_key, pdf_blob_key FROM licence")).mappings().all()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def _check_records(database_url: str) -> list[dict[str, Any]]:
    rows = _licences(database_url)
    assert all(r["pdf_blob_key"] for r in rows), "a licence without its sealed PDF"
    assert len({r["number"] for r in rows}) == len(rows)
    keys = [r["idempotency_key"] for r in rows if r["idempotency_key"]]
    assert len(keys) == len(set(keys)), "two licences for one idempotency key"
    return rows


def test_sigkill_during_issuance_then_idempotent_retries(serve: Any) -> None:
    server = serve()
    token = token_for(server)
    rng = random.Random(1)
    requests = {uuid.uuid4().hex: {"type_code": "BL", **licence_row(rng)} for _ in range(40)}
    answers: dict[str, int | str] = {}

    def send(key: str) -> None:
        try:
            answers[key] = _issue(server.base, token, key, requests[key]).status_code
        except httpx.HTTPError as exc:
            answers[key] = type(exc).__name__

    threads = [threading.Thread(target=send, args=(key,)) for key in requests]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not answers and time.monotonic() < deadline:  # the first landed: the others are in flight or queued
        time.sleep(0.02)
    kill_tree(server)
    for thread in threads:
        thread.join()
    assert any(isinstance(a, str) for a in answers.values()), f"nothing was in flight: {answers}"
    before = _check_records(serve.database_url)

    server = serve()  # restart on the same data dir: recovers by itself
    token = token_for(server)
    first = {key: _issue(server.base, token, key, body) for key, body in requests.items()}
    assert {r.status_code for r in first.values()} <= {200, 201}, {k: r.text for k, r in first.items()}
    again = {key: _issue(server.base, token, key, body) for key, body in requests.items()}
    assert all(again[k].json()["id"] == first[k].json()["id"] for k in requests)
    rows = _check_records(serve.database_url)
    assert len([r for r in rows if r["idempotency_key"] in requests]) == len(requests)
    assert {r["id"] for r in before} <= {r["id"] for r in rows}
    assert audit_verify(server, serve.database_url)["ok"] is True


def test_vault_stopped_mid_issuance_and_mid_bulk_job(serve: Any) -> None:
    ROWS = 400  # noqa: N806 - enough rows that the job (~75 rows/s here) is still running when Vault stops
    server = serve(ECERT_VAULT_TIMEOUT="2")
    token = token_for(server)
    auth = {"Authorization": f"Bearer {token}"}
    rng = random.Random(2)
    bao = bao_process(server)

    job = httpx.post(f"{server.base}/api/v1/bulk-jobs", headers={**auth, "Idempotency-Key": "vault-stopped"}, timeout=60,
                     json={"type_code": "BL", "rows": [licence_row(rng) for _ in range(ROWS)]})
    assert job.status_code == 202
    job_id = job.json()["id"]
    time.sleep(0.5)
    bao.send_signal(signal.SIGSTOP)  # Vault stops answering (a hung node, a partition)
    try:
        key, body = uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}
        refused = _issue(server.base, token, key, body)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["content-type"].startswith("application/problem+json")
        stalled = httpx.get(f"{server.base}/api/v1/bulk-jobs/{job_id}", headers=auth, timeout=30).json()
        assert stalled["status"] in ("queued", "running"), stalled
    finally:
        bao.send_signal(signal.SIGCONT)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        retried = _issue(server.base, token, key, body)
        if retried.status_code != 503:
            break
        time.sleep(1)
    assert retried.status_code == 201, retried.text
    while time.monotonic() < deadline:
        view = httpx.get(f"{server.base}/api/v1/bulk-jobs/{job_id}", headers=auth, timeout=30).json()
        if view["status"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    assert (view["status"], view["succeeded"], view["failed"]) == ("completed", ROWS, 0), view
    items = httpx.get(f"{server.base}/api/v1/bulk-jobs/{job_id}/items", headers=auth, params={"limit": 1000},
                      timeout=30).json()
    listed = items["items"] if isinstance(items, dict) else items
    assert sorted(i["row"] for i in listed) == list(range(ROWS))
    assert len({i["licence_id"] for i in listed}) == ROWS
    rows = _check_records(serve.database_url)
    assert len([r for r in rows if r["idempotency_key"] == key]) == 1
    assert audit_verify(server, serve.database_url)["ok"] is True

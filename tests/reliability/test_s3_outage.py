"""The S3 blob store under a real ``ecert serve`` configured by environment variables, with the S3 server stopped
mid-run (moto's S3 server over HTTP on loopback; tests/support/s3server.py)."""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any

import httpx
import pytest

from bench.harness import licence_row
from tests.reliability.conftest import audit_verify, token_for
from tests.reliability.test_faults import _check_records, _issue
from tests.support.s3server import ACCESS_KEY, SECRET_KEY, MotoS3

pytestmark = pytest.mark.slow


def test_s3_outage_refuses_cleanly_then_recovers(serve: Any, private_s3: MotoS3) -> None:
    bucket = private_s3.new_bucket()
    server = serve(ECERT_BLOB_STORE="s3", ECERT_S3_ENDPOINT_URL=private_s3.url, ECERT_S3_BUCKET=bucket,
                   ECERT_S3_ACCESS_KEY_ID=ACCESS_KEY, ECERT_S3_SECRET_ACCESS_KEY=SECRET_KEY, ECERT_S3_PREFIX="ecert",
                   ECERT_S3_TIMEOUT="2", ECERT_LOG_LEVEL="DEBUG")
    token = token_for(server)
    rng = random.Random(4)
    before = _check_records(serve.database_url)
    raw = private_s3.client()
    stored = {o["Key"] for o in raw.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert {f"ecert/{r['pdf_blob_key']}" for r in before} <= stored  # the demo seed's PDFs went to the bucket

    private_s3.stop()
    key, body = uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}
    refused = _issue(server.base, token, key, body)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/blob-store-unavailable"
    assert int(refused.headers["Retry-After"]) > 0
    assert len(_check_records(serve.database_url)) == len(before)  # nothing half-issued
    assert httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200

    private_s3.start()  # back, empty (moto keeps objects in memory): the same request now succeeds, once
    private_s3.new_bucket(bucket)
    issued = _issue(server.base, token, key, body)
    assert issued.status_code == 201, issued.text
    assert _issue(server.base, token, key, body).json()["id"] == issued.json()["id"]
    pdf = httpx.get(f"{server.base}/api/v1/licences/{issued.json()['id']}/pdf", timeout=30,
                    headers={"Authorization": f"Bearer {token}"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == issued.json()["pdf"]["sha256"]
    rows = _check_records(serve.database_url)
    assert len(rows) == len(before) + 1
    new = next(r for r in rows if r["idempotency_key"] == key)
    listed = [o["Key"] for o in private_s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [f"ecert/{new['pdf_blob_key']}"]  # one object for the request and its retry
    log = (server.data_dir / "serve.log").read_text(errors="replace")
    assert SECRET_KEY not in log
    assert body["holder"]["id_number"] not in log
    assert audit_verify(server, serve.database_url)["ok"] is True

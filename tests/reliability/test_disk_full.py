"""Disk full on the blob store (filesystem blobs on a small tmpfs, filled up while the service runs).

Needs ``mount`` (root, as on the CI machines); skipped where a tmpfs cannot be mounted.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import licence_row
from tests.reliability.conftest import audit_verify, token_for
from tests.reliability.test_faults import _check_records, _issue

pytestmark = pytest.mark.slow


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def test_blob_store_full_refuses_cleanly_then_recovers(serve: Any, small_disk: Path) -> None:
    server = serve(ECERT_BLOB_STORE="filesystem", ECERT_BLOB_DIR=str(small_disk))
    token = token_for(server)
    rng = random.Random(3)
    before = len(_check_records(serve.database_url))
    filler = _fill(small_disk)

    key, body = uuid.uuid4().hex, {"type_code": "BL", **licence_row(rng)}
    refused = _issue(server.base, token, key, body)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["Retry-After"]) > 0
    assert len(_check_records(serve.database_url)) == before  # nothing half-issued
    assert httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200

    filler.unlink()  # space again: the same request now succeeds, once
    issued = _issue(server.base, token, key, body)
    assert issued.status_code == 201, issued.text
    again = _issue(server.base, token, key, body)
    assert again.json()["id"] == issued.json()["id"]
    pdf = httpx.get(f"{server.base}/api/v1/licences/{issued.json()['id']}/pdf", timeout=30,
                    headers={"Authorization": f"Bearer {token}"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    rows = _check_records(serve.database_url)
    assert len(rows) == before + 1
    assert audit_verify(server, serve.database_url)["ok"] is True

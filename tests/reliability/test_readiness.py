"""/readyz reports the blob store (disk full, read-only, S3 down) with the reason, and never waits on a hung
dependency beyond its budget. Real tmpfs mounts (as root, like test_disk_full), a real S3 server, a real OpenBao."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from ecert.readiness import READY_BUDGET
from ecert.runtime import Runtime, keystore_for
from keys import VaultCredentials
from keys.openbao import ManagedOpenBao
from tests.support.services import services_for
from tests.reliability.test_disk_full import _fill
from tests.support.s3server import ACCESS_KEY, SECRET_KEY, MotoS3


def _client(runtime: Runtime, **changes: Any) -> TestClient:
    settings = runtime.settings.model_copy(update=changes)
    keystore = keystore_for(settings) if "vault_addr" in changes else runtime.keystore
    return TestClient(create_app(services_for(Runtime(settings=settings, engine=runtime.engine, keystore=keystore))))


def test_a_full_blob_disk_makes_the_service_not_ready_with_the_reason(runtime: Runtime, small_disk: Path) -> None:
    with _client(runtime, blob_store="filesystem", blob_dir=small_disk) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["blobs"] == "ok"
        filler = _fill(small_disk)
        full = client.get("/readyz")
        assert full.status_code == 503 and full.headers["retry-after"] == "5"
        assert full.json()["checks"] == {"database": "ok", "vault": "ok", "blobs": "full"}
        assert f"KiB free in {small_disk}" in full.json()["reasons"]["blobs"]
        assert "blobs full" in full.json()["detail"]
        filler.unlink()
        assert client.get("/readyz").status_code == 200


def test_a_read_only_blob_store_is_not_ready(runtime: Runtime, small_disk: Path) -> None:
    with _client(runtime, blob_store="filesystem", blob_dir=small_disk) as client:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        try:
            answer = client.get("/readyz")
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        assert answer.status_code == 503
        assert answer.json()["checks"]["blobs"] == "unwritable"
        assert "Read-only file system" in answer.json()["reasons"]["blobs"]
        assert client.get("/readyz").status_code == 200
    assert list(small_disk.iterdir()) == []  # the probe leaves nothing behind


def test_s3_down_is_not_ready(runtime: Runtime, private_s3: MotoS3) -> None:
    bucket = private_s3.new_bucket()
    with _client(runtime, blob_store="s3", s3_endpoint_url=private_s3.url, s3_bucket=bucket, s3_access_key_id=ACCESS_KEY,
                 s3_secret_access_key=SecretStr(SECRET_KEY), s3_timeout=2) as client:
        assert client.get("/readyz").json()["checks"]["blobs"] == "ok"
        private_s3.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["checks"]["blobs"] in ("unavailable", "timeout")
        assert down.json()["reasons"]["blobs"]
        private_s3.start()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:  # a probe still waiting on the dead server finishes first
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.5)


def test_a_hung_vault_is_reported_within_the_budget_not_waited_for(
    runtime: Runtime, private_openbao: tuple[ManagedOpenBao, VaultCredentials]
) -> None:
    server, credentials = private_openbao
    with _client(runtime, vault_addr=server.addr, vault_role_id=credentials.role_id,
                 vault_secret_id=SecretStr(credentials.secret_id or "")) as client:
        assert client.get("/readyz").status_code == 200
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)  # hung: Vault's own health call would wait 3 s
        try:
            hung = client.get("/readyz")
            again = client.get("/readyz")  # the first check is still running: awaited, not started twice
        finally:
            os.kill(server.pid, signal.SIGCONT)
        for answer in (hung, again):
            assert answer.status_code == 503
            assert answer.json()["checks"] == {"database": "ok", "vault": "timeout"}
            assert answer.json()["reasons"]["vault"] == f"no answer within {READY_BUDGET:g} s"

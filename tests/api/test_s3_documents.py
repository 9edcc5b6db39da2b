"""Sealed licence PDFs in an S3 bucket (ECERT_BLOB_STORE=s3), through HTTP, against a real S3-compatible server.

The server is moto's standalone S3 emulator over HTTP on loopback (tests/support/s3server.py); AWS S3,
MinIO and Ceph were not reachable from the machines these tests run on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from api.app import create_app
from ecert.container import blob_store_for
from tests.support.services import services_for
from audit.models import AuditEvent
from certificates.blobs_s3 import S3BlobStore
from certificates.orphans import collect_orphans, find_orphans
from certificates.models import Licence
from ecert.runtime import Runtime
from tests.api.test_licence_authz import Department
from tests.support.licences import uscc
from tests.support.s3server import ACCESS_KEY, SECRET_KEY, MotoS3

PREFIX = "ecert-test"


def s3_runtime(runtime: Runtime, server: MotoS3, bucket: str) -> Runtime:
    settings = runtime.settings.model_copy(update={
        "blob_store": "s3", "s3_endpoint_url": server.url, "s3_bucket": bucket, "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SecretStr(SECRET_KEY), "s3_prefix": PREFIX, "s3_timeout": 2.0,
    })
    return Runtime(settings=settings, engine=runtime.engine, keystore=runtime.keystore)


def objects(server: MotoS3, bucket: str) -> dict[str, bytes]:
    raw = server.client()
    listed = raw.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: raw.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


@pytest.fixture(scope="module")
def bucket(s3_server: MotoS3, runtime: Runtime) -> str:
    """One bucket per database backend, so every object in it belongs to that database's licences or is an orphan."""
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def s3_client(runtime: Runtime, s3_server: MotoS3, bucket: str) -> Iterator[TestClient]:
    with TestClient(create_app(services_for(s3_runtime(runtime, s3_server, bucket))), raise_server_exceptions=False) as client:
        yield client


def _issue_with_key(client: TestClient, department: Department, key: str) -> Any:
    """The same request each time for one key (the holder's number derives from the key), as a client's retry sends."""
    body = {"type_code": "BL", "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc(random.Random(key))},
            "fields": {"company": "示例有限公司", "capital": 100}}
    return client.post("/api/v1/licences", json=body, headers={**department.headers, "Idempotency-Key": key})


def test_a_sealed_licence_lives_in_the_bucket_and_downloads_intact(s3_client: TestClient, s3_server: MotoS3,
                                                                   bucket: str, uid: str) -> None:
    runtime: Runtime = s3_client.app.state.runtime  # type: ignore[attr-defined]
    dept = Department(s3_client, runtime, f"S{uid.upper()}")
    licence = dept.licence.json()
    stored = objects(s3_server, bucket)[f"{PREFIX}/licences/{dept.code}/{dept.licence_id}.pdf"]
    pdf = s3_client.get(f"/api/v1/licences/{dept.licence_id}/pdf", headers=dept.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == stored and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == licence["pdf"]["sha256"]
    assert b"/ByteRange" in pdf.content  # sealed, not a bare rendering

    key = uuid.uuid4().hex
    first = _issue_with_key(s3_client, dept, key)
    assert first.status_code == 201, first.text
    before = objects(s3_server, bucket)
    again = _issue_with_key(s3_client, dept, key)
    assert again.status_code in (200, 201) and again.json()["id"] == first.json()["id"]
    assert objects(s3_server, bucket) == before  # the retry stored no second object


def test_a_damaged_object_is_refused_on_download(s3_client: TestClient, s3_server: MotoS3, bucket: str,
                                                 uid: str) -> None:
    runtime: Runtime = s3_client.app.state.runtime  # type: ignore[attr-defined]
    dept = Department(s3_client, runtime, f"C{uid.upper()}")
    name = f"{PREFIX}/licences/{dept.code}/{dept.licence_id}.pdf"
    raw = s3_server.client()
    original = raw.get_object(Bucket=bucket, Key=name)
    damaged = bytearray(original["Body"].read())
    damaged[len(damaged) // 2] ^= 0x01
    raw.put_object(Bucket=bucket, Key=name, Body=bytes(damaged), Metadata=original["Metadata"])
    refused = s3_client.get(f"/api/v1/licences/{dept.licence_id}/pdf", headers=dept.headers)
    assert refused.status_code == 500 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/blob-corrupted"
    assert b"%PDF" not in refused.content


def test_s3_down_answers_503_and_commits_nothing_then_the_retry_succeeds_once(
        runtime: Runtime, private_s3: MotoS3, uid: str) -> None:
    bucket = private_s3.new_bucket()
    s3 = s3_runtime(runtime, private_s3, bucket)
    with TestClient(create_app(services_for(s3)), raise_server_exceptions=False) as client:
        dept = Department(client, s3, f"O{uid.upper()}")
        private_s3.stop()
        key = uuid.uuid4().hex
        refused = _issue_with_key(client, dept, key)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/blob-store-unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        assert SECRET_KEY not in refused.text
        with Session(runtime.engine) as session:
            assert session.exec(select(Licence).where(Licence.idempotency_key == key)).first() is None
        download = client.get(f"/api/v1/licences/{dept.licence_id}/pdf", headers=dept.headers)
        assert download.status_code == 503 and int(download.headers["Retry-After"]) > 0

        private_s3.start()  # the store is back (empty: moto keeps objects in memory)
        private_s3.new_bucket(bucket)
        issued = _issue_with_key(client, dept, key)
        assert issued.status_code == 201, issued.text
        assert _issue_with_key(client, dept, key).json()["id"] == issued.json()["id"]
        assert list(objects(private_s3, bucket)) == [f"{PREFIX}/licences/{dept.code}/{issued.json()['id']}.pdf"]
        with Session(runtime.engine) as session:
            assert len(session.exec(select(Licence).where(Licence.idempotency_key == key)).all()) == 1


def test_the_setting_selects_the_s3_store(runtime: Runtime, s3_server: MotoS3, bucket: str) -> None:
    store = blob_store_for(s3_runtime(runtime, s3_server, bucket).settings)
    assert isinstance(store, S3BlobStore) and store.bucket == bucket and store.prefix == f"{PREFIX}/"
    assert SECRET_KEY not in repr(store)


def test_orphans_are_collected_and_licences_kept(s3_client: TestClient, s3_server: MotoS3, bucket: str,
                                                 uid: str) -> None:
    runtime: Runtime = s3_client.app.state.runtime  # type: ignore[attr-defined]
    dept = Department(s3_client, runtime, f"G{uid.upper()}")
    store = blob_store_for(runtime.settings)
    orphan = f"licences/{dept.code}/{uuid.uuid4().hex}.pdf"  # as left by an issuance whose commit failed
    store.put(None, orphan, b"%PDF-1.7 never committed")  # type: ignore[arg-type]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    with Session(runtime.engine) as session:
        found = [o.key for o in find_orphans(session, store, before=later)]  # type: ignore[arg-type]
    assert orphan in found and f"licences/{dept.code}/{dept.licence_id}.pdf" not in found
    deleted = collect_orphans(runtime.engine, store, before=later, actor="test")  # type: ignore[arg-type]
    assert orphan in [o.key for o in deleted] and not store.exists(None, orphan)  # type: ignore[arg-type]
    with Session(runtime.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.target == f"blob:{orphan}")).one()
        assert event.action == "certificates.blob.collect"
    assert s3_client.get(f"/api/v1/licences/{dept.licence_id}/pdf", headers=dept.headers).status_code == 200

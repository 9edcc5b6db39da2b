"""The S3 blob store against a real S3-compatible server (moto's, over HTTP): bytes, keys, integrity, outages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates.blobs import BlobCorrupted, BlobNotFound, BlobStoreUnavailable
from certificates.blobs import FileBlobStore
from certificates.blobs_s3 import S3BlobStore
from certificates.orphans import find_orphans
from ecert.cli import main
from ecert.db import session_scope
from ecert.errors import ConfigurationError
from ecert.settings import load_settings
from keys.openbao import free_port
from tests.support.s3server import ACCESS_KEY, SECRET_KEY, MotoS3

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64
HOUR = dt.timedelta(hours=1)


def store_on(server: MotoS3, bucket: str, prefix: str = "") -> S3BlobStore:
    return S3BlobStore(bucket=bucket, endpoint_url=server.url, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                       prefix=prefix, timeout=2, attempts=1)


def test_round_trip_under_the_prefix_and_a_retried_put_is_harmless(s3_server: MotoS3, uid: str) -> None:
    bucket = s3_server.new_bucket()
    store = store_on(s3_server, bucket, prefix="/ecert/pdfs/")
    key = f"licences/D{uid}/{uid}.pdf"
    assert store.put(None, key, PDF) == hashlib.sha256(PDF).hexdigest()  # type: ignore[arg-type]
    assert store.put(None, key, PDF) == hashlib.sha256(PDF).hexdigest()  # type: ignore[arg-type]  # a retry
    raw = s3_server.client()
    listed = raw.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [f"ecert/pdfs/{key}"]
    head = raw.head_object(Bucket=bucket, Key=f"ecert/pdfs/{key}")
    assert head["ContentType"] == "application/pdf" and head["Metadata"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert store.get(None, key, sha256=hashlib.sha256(PDF).hexdigest()) == PDF  # type: ignore[arg-type]
    assert store.exists(None, key) and not store.exists(None, f"licences/D{uid}/none.pdf")  # type: ignore[arg-type]
    assert [k for k, _ in store.entries()] == [key]
    with pytest.raises(BlobNotFound):
        store.get(None, f"licences/D{uid}/none.pdf")  # type: ignore[arg-type]
    for bad in ("../x", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ValueError):
            store.put(None, bad, b"x")  # type: ignore[arg-type]


def test_a_damaged_object_is_detected_on_read(s3_server: MotoS3, uid: str) -> None:
    bucket = s3_server.new_bucket()
    store = store_on(s3_server, bucket)
    key = f"licences/D{uid}/{uid}.pdf"
    recorded = store.put(None, key, PDF)  # type: ignore[arg-type]
    damaged = bytearray(PDF)
    damaged[100] ^= 0x01
    raw = s3_server.client()
    # replaced behind ecert's back, keeping the old metadata: only the row's SHA-256 can tell
    raw.put_object(Bucket=bucket, Key=key, Body=bytes(damaged), Metadata={"sha256": recorded})
    with pytest.raises(BlobCorrupted):
        store.get(None, key, sha256=recorded)  # type: ignore[arg-type]
    with pytest.raises(BlobCorrupted):  # no SHA-256 from the caller: the object's own metadata is checked
        store.get(None, key)  # type: ignore[arg-type]
    raw.put_object(Bucket=bucket, Key=key, Body=PDF, Metadata={"sha256": recorded})
    assert store.get(None, key, sha256=recorded) == PDF  # type: ignore[arg-type]


def test_a_rolled_back_transaction_leaves_an_orphan_never_a_dangling_record(s3_server: MotoS3, engine: Engine,
                                                                            uid: str) -> None:
    store = store_on(s3_server, s3_server.new_bucket(), prefix="gc")
    key = f"licences/D{uid}/{uid}.pdf"
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        store.put(session, key, PDF)  # written before the commit...
        raise RuntimeError("the issuance failed after the write")  # ...which never happens
    with Session(engine) as session:  # no licence names it: an orphan, listed for collection
        assert [o.key for o in find_orphans(session, store, before=dt.datetime.now(dt.timezone.utc) + HOUR)] == [key]
        assert find_orphans(session, store, before=dt.datetime.now(dt.timezone.utc) - HOUR) == []  # too young
    store.delete(None, key)  # type: ignore[arg-type]
    store.delete(None, key)  # type: ignore[arg-type]  # deleting twice is not an error
    assert list(store.entries()) == []


def test_an_unreachable_or_misconfigured_store_is_unavailable(private_s3: MotoS3, uid: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    store = store_on(private_s3, private_s3.new_bucket())
    key = f"licences/D{uid}/{uid}.pdf"
    store.put(None, key, PDF)  # type: ignore[arg-type]
    private_s3.stop()
    caplog.set_level(logging.DEBUG)
    for call in (lambda: store.put(None, key, PDF), lambda: store.get(None, key), lambda: store.exists(None, key)):
        started = time.monotonic()
        with pytest.raises(BlobStoreUnavailable) as caught:
            call()  # type: ignore[no-untyped-call]
        assert caught.value.status == 503 and caught.value.retry_after > 0
        assert time.monotonic() - started < 10
    nowhere = S3BlobStore(bucket="ecert-none", endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=1, attempts=1,
                          access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    with pytest.raises(BlobStoreUnavailable):
        nowhere.put(None, key, PDF)  # type: ignore[arg-type]
    assert SECRET_KEY not in caplog.text and SECRET_KEY not in repr(store)


def test_a_missing_bucket_is_unavailable_not_a_crash(s3_server: MotoS3, uid: str) -> None:
    store = store_on(s3_server, f"ecert-missing-{uid}")
    with pytest.raises(BlobStoreUnavailable) as caught:
        store.put(None, f"licences/D{uid}/{uid}.pdf", PDF)  # type: ignore[arg-type]
    assert "NoSuchBucket" in caught.value.detail


def test_s3_settings_are_checked_and_the_secret_is_masked() -> None:
    settings = load_settings(blob_store="s3", s3_bucket="ecert-pdfs", s3_endpoint_url="http://127.0.0.1:9000",
                             s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY, s3_prefix="prod/")
    assert SECRET_KEY not in repr(settings) and SECRET_KEY not in str(settings.model_dump())
    with pytest.raises(ConfigurationError, match="s3_bucket"):
        load_settings(blob_store="s3")
    with pytest.raises(ConfigurationError, match="s3_secret_access_key"):
        load_settings(blob_store="s3", s3_bucket="ecert-pdfs", s3_access_key_id=ACCESS_KEY)
    for bad in ({"s3_endpoint_url": "ftp://x"}, {"s3_prefix": "../up"}, {"s3_bucket": "Not_A_Bucket"}):
        with pytest.raises(ConfigurationError):
            load_settings(blob_store="s3", **{"s3_bucket": "ecert-pdfs", **bad})


def test_the_orphans_command_lists_then_deletes(s3_server: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], uid: str) -> None:
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ECERT_DEMO", "false")
    for name in ("ECERT_DATABASE_URL", "ECERT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    bucket = s3_server.new_bucket()
    s3_env = {"ECERT_BLOB_STORE": "s3", "ECERT_S3_ENDPOINT_URL": s3_server.url, "ECERT_S3_BUCKET": bucket,
              "ECERT_S3_ACCESS_KEY_ID": ACCESS_KEY, "ECERT_S3_SECRET_ACCESS_KEY": SECRET_KEY, "ECERT_S3_PREFIX": "p"}
    files = FileBlobStore(tmp_path / "blobs")
    for env, store in ((s3_env, store_on(s3_server, bucket, prefix="p")), ({"ECERT_BLOB_STORE": "filesystem"}, files)):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        key = f"licences/D{uid}/{uid}.pdf"
        store.put(None, key, PDF)  # type: ignore[arg-type]  # no licence in this fresh database names it
        assert main(["blobs", "orphans", "--json"]) == 0  # default cut-off: 24 hours, so not yet
        assert json.loads(capsys.readouterr().out)["orphans"] == []
        assert main(["blobs", "orphans", "--older-than-hours", "0", "--json"]) == 0
        assert [o["key"] for o in json.loads(capsys.readouterr().out)["orphans"]] == [key]
        assert main(["blobs", "orphans", "--older-than-hours", "0", "--delete"]) == 0
        assert capsys.readouterr().out.strip().endswith("1 orphan blob(s) deleted")
        assert list(store.entries()) == [] and SECRET_KEY not in capsys.readouterr().err  # type: ignore[attr-defined]
    monkeypatch.setenv("ECERT_BLOB_STORE", "database")
    assert main(["blobs", "orphans"]) == 0
    assert "no orphans" in capsys.readouterr().out

"""Both blob stores keep bytes exactly; the database one only when the transaction commits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates.blobs import BlobNotFound, DatabaseBlobStore, FileBlobStore
from ecert.db import session_scope


def test_database_store_is_transactional(engine: Engine, uid: str) -> None:
    store = DatabaseBlobStore()
    data = b"%PDF-1.7 " + uid.encode() * 1000
    with session_scope(engine) as session:
        assert store.put(session, f"t/{uid}.pdf", data) == hashlib.sha256(data).hexdigest()
    with Session(engine) as session:
        assert store.get(session, f"t/{uid}.pdf") == data
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        store.put(session, f"t/{uid}-lost.pdf", data)
        raise RuntimeError("issuance failed")
    with Session(engine) as session, pytest.raises(BlobNotFound):
        store.get(session, f"t/{uid}-lost.pdf")


def test_file_store_round_trip_and_refuses_path_tricks(tmp_path: Path, engine: Engine) -> None:
    store = FileBlobStore(tmp_path)
    with Session(engine) as session:
        store.put(session, "licences/D1/abc.pdf", b"data")
        assert store.get(session, "licences/D1/abc.pdf") == b"data"
        with pytest.raises(BlobNotFound):
            store.get(session, "licences/D1/none.pdf")
        for key in ("../x", "/etc/passwd", "a/../../b", ""):
            with pytest.raises(ValueError):
                store.put(session, key, b"x")
    assert not list(tmp_path.rglob("*.tmp"))


def test_file_store_that_cannot_write_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    from certificates.blobs import BlobStoreUnavailable

    blocked = tmp_path / "not-a-dir"
    blocked.write_bytes(b"")  # the store's root is a file: every write fails with an OSError
    store = FileBlobStore(blocked)
    with pytest.raises(BlobStoreUnavailable) as caught:
        store.put(None, "licences/abc.pdf", b"%PDF-1.7")  # type: ignore[arg-type]
    assert caught.value.status == 503
    assert not list(tmp_path.glob("**/*.tmp"))


def test_every_store_refuses_bytes_that_do_not_match_the_recorded_hash(tmp_path: Path, engine: Engine, uid: str) -> None:
    from sqlalchemy import update

    from certificates.blobs import BlobCorrupted
    from certificates.models import StoredBlob

    data = b"%PDF-1.7 " + uid.encode() * 100
    files, rows = FileBlobStore(tmp_path), DatabaseBlobStore()
    with session_scope(engine) as session:
        recorded = files.put(session, f"t/{uid}.pdf", data)
        assert rows.put(session, f"t/{uid}-db.pdf", data) == recorded
    (tmp_path / "t" / f"{uid}.pdf").write_bytes(data.replace(b"1.7", b"1.4"))
    with session_scope(engine) as session:
        session.execute(update(StoredBlob).where(StoredBlob.key == f"t/{uid}-db.pdf").values(data=data[:-1]))
    with Session(engine) as session:
        with pytest.raises(BlobCorrupted) as caught:
            files.get(session, f"t/{uid}.pdf", sha256=recorded)
        assert caught.value.status == 500
        with pytest.raises(BlobCorrupted):  # the row's own hash is checked even when the caller has none
            rows.get(session, f"t/{uid}-db.pdf")
        assert files.exists(session, f"t/{uid}.pdf") and not files.exists(session, f"t/{uid}-none.pdf")
        assert rows.exists(session, f"t/{uid}-db.pdf") and not rows.exists(session, f"t/{uid}-none.pdf")

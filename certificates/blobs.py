"""Where signed PDFs are kept: a pluggable blob store (database table or filesystem; S3 later).

The database store writes in the caller's transaction, so a rolled-back issuance leaves no
blob. The filesystem store writes a file named by the key (atomically, via a temporary file);
a rolled-back issuance can leave an orphan file but never a record pointing at a missing one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlmodel import Session

from certificates.models import StoredBlob
from ecert.errors import NotFound, ServiceUnavailable

__all__ = ["BlobStore", "DatabaseBlobStore", "FileBlobStore", "BlobNotFound", "BlobStoreUnavailable"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,100}){0,3}$")


class BlobNotFound(NotFound):
    slug = "blob-not-found"
    title = "The stored document is missing"


class BlobStoreUnavailable(ServiceUnavailable):
    """The document store cannot take a write (disk full, read-only, I/O error); nothing was issued. Retry later."""

    slug = "blob-store-unavailable"
    title = "The document store cannot store documents right now"


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid blob key {key!r}")
    return key


@runtime_checkable
class BlobStore(Protocol):
    def put(self, session: Session, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``; return its SHA-256 (hex)."""
        ...

    def get(self, session: Session, key: str) -> bytes:
        ...


class DatabaseBlobStore:
    """Blobs in the ``licence_blob`` table, written in the caller's transaction."""

    def put(self, session: Session, key: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        session.add(StoredBlob(key=_check_key(key), data=data, sha256=digest, created_at=dt.datetime.now(dt.timezone.utc)))
        return digest

    def get(self, session: Session, key: str) -> bytes:
        row = session.get(StoredBlob, _check_key(key))
        if row is None:
            raise BlobNotFound(f"no stored document {key}")
        return bytes(row.data)


class FileBlobStore:
    """Blobs as files under ``root`` (one file per key, written atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, session: Session, key: str, data: bytes) -> str:
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:  # ENOSPC, EROFS, EIO...: the caller's transaction rolls back
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise BlobStoreUnavailable(f"cannot store document {key}: {exc.strerror or exc}") from exc
        return hashlib.sha256(data).hexdigest()

    def get(self, session: Session, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(f"no stored document {key}") from exc

"""Where signed PDFs are kept: a pluggable blob store (database table, filesystem or S3).

The database store writes in the caller's transaction, so a rolled-back issuance leaves no
blob. The filesystem store (and :class:`certificates.blobs_s3.S3BlobStore`) writes the blob
named by the key *before* the caller's transaction commits: a rolled-back issuance can leave an
orphan blob (harmless, collectable) but never a committed record pointing at a missing one.
Keys name one licence each (``licences/<department>/<licence id>.pdf``), so a retried write puts
the same bytes under the same key. Reads compare the bytes with the SHA-256 the caller recorded
at issuance (``licence.pdf_sha256``) and raise :class:`BlobCorrupted` on a mismatch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlmodel import Session

from certificates.models import StoredBlob
from ecert.errors import EcertError, NotFound, ServiceUnavailable

__all__ = [
    "BlobStore", "DatabaseBlobStore", "FileBlobStore", "BlobNotFound", "BlobStoreUnavailable", "BlobCorrupted",
    "check_key", "verified",
]

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,100}){0,3}$")


class BlobNotFound(NotFound):
    slug = "blob-not-found"
    title = "The stored document is missing"


class BlobStoreUnavailable(ServiceUnavailable):
    """The document store is unreachable or cannot take a write (disk full, I/O error, S3 down); nothing was issued. Retry later."""

    slug = "blob-store-unavailable"
    title = "The document store cannot store documents right now"


class BlobCorrupted(EcertError):
    """The stored document's bytes do not match the SHA-256 recorded at issuance; it is not served."""

    slug = "blob-corrupted"
    title = "The stored document failed its integrity check"


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid blob key {key!r}")
    return key


def verified(key: str, data: bytes, sha256: str | None) -> bytes:
    """``data`` if its SHA-256 is ``sha256`` (or nothing is expected); else log and raise :class:`BlobCorrupted`."""
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
        log.error("stored document failed its integrity check", extra={"blob_key": key, "expected_sha256": sha256})
        raise BlobCorrupted(f"stored document {key} does not match its recorded SHA-256")
    return data


@runtime_checkable
class BlobStore(Protocol):
    def put(self, session: Session, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (a retry with the same bytes is harmless); return its SHA-256 (hex)."""
        ...

    def get(self, session: Session, key: str, *, sha256: str | None = None) -> bytes:
        """The bytes under ``key``; :class:`BlobCorrupted` if ``sha256`` is given and does not match."""
        ...

    def exists(self, session: Session, key: str) -> bool:
        ...


class DatabaseBlobStore:
    """Blobs in the ``licence_blob`` table, written in the caller's transaction."""

    def put(self, session: Session, key: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        session.add(StoredBlob(key=check_key(key), data=data, sha256=digest, created_at=dt.datetime.now(dt.timezone.utc)))
        return digest

    def get(self, session: Session, key: str, *, sha256: str | None = None) -> bytes:
        row = session.get(StoredBlob, check_key(key))
        if row is None:
            raise BlobNotFound(f"no stored document {key}")
        return verified(key, bytes(row.data), sha256 or row.sha256)

    def exists(self, session: Session, key: str) -> bool:
        return session.get(StoredBlob, check_key(key)) is not None


class FileBlobStore:
    """Blobs as files under ``root`` (one file per key, written atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

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

    def get(self, session: Session, key: str, *, sha256: str | None = None) -> bytes:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(f"no stored document {key}") from exc
        except OSError as exc:  # EIO, unmounted share...
            raise BlobStoreUnavailable(f"cannot read document {key}: {exc.strerror or exc}") from exc
        return verified(key, data, sha256)

    def exists(self, session: Session, key: str) -> bool:
        return self._path(key).is_file()

    def entries(self, under: str = "") -> Iterator[tuple[str, dt.datetime]]:
        """(key, last modified) of every stored file under ``under`` (temporary files excluded), for orphan collection."""
        for path in sorted(self.root.glob(f"{under}**/*")):
            if path.is_file() and not path.name.startswith("."):
                modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
                yield path.relative_to(self.root).as_posix(), modified

    def delete(self, session: Session, key: str) -> None:
        """Remove an orphan file (a key no licence names); a missing file is not an error."""
        self._path(key).unlink(missing_ok=True)

"""Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph RGW...) through boto3 (``pip install ecert[s3]``).

Same contract as :class:`certificates.blobs.FileBlobStore`: the object is written *before* the
caller's transaction commits, so a committed licence never points at a missing PDF; a
transaction that rolls back after the write leaves an orphan object (no licence row names it),
which :mod:`certificates.orphans` finds and removes. Keys name one licence each, so a
retried write re-puts the same bytes under the same key.

Integrity: each put carries ``Content-MD5`` (the server refuses a body damaged in transit) and
the SHA-256 as object metadata; each read compares the bytes with the SHA-256 the licence row
recorded (or, when the caller has none, the metadata). Connection failures, timeouts and every
error answer other than "no such key" raise :class:`BlobStoreUnavailable` (HTTP 503 + Retry-After).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from sqlmodel import Session

from certificates.blobs import BlobNotFound, BlobStoreUnavailable, check_key, verified

__all__ = ["S3BlobStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore:
    """Blobs as objects ``<prefix><key>`` in one bucket; path-style addressing by default (MinIO, Ceph)."""

    def __init__(
        self, *, bucket: str, endpoint_url: str | None = None, region: str = "us-east-1",
        access_key_id: str | None = None, secret_access_key: str | None = None, prefix: str = "",
        path_style: bool = True, timeout: float = 10.0, attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        config = Config(
            region_name=region, connect_timeout=timeout, read_timeout=timeout,
            retries={"max_attempts": attempts, "mode": "standard"}, max_pool_connections=50,  # ~ the API's thread pool
            s3={"addressing_style": "path" if path_style else "virtual"},
            # Content-MD5 is sent explicitly; the newer default CRC trailers are refused by some MinIO/Ceph versions
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        )
        # credentials None: boto3's own chain (AWS_* variables, instance or pod role)
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key, config=config,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, action: str, key: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _NOT_FOUND:
                raise BlobNotFound(f"no stored document {key}") from exc
            log.warning("S3 store refused a request", extra={"action": action, "blob_key": key, "s3_code": code})
            raise BlobStoreUnavailable(f"cannot {action} document {key}: the object store answered {code}") from exc
        except BotoCoreError as exc:  # connection refused, timeouts, broken responses, no credentials
            log.warning("S3 store unreachable", extra={"action": action, "blob_key": key, "error": type(exc).__name__})
            raise BlobStoreUnavailable(f"cannot {action} document {key}: the object store is unreachable") from exc

    def put(self, session: Session, key: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._call("store", key, lambda: self._client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data,
            ContentMD5=base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),  # FIPS hosts allow it
            ContentType="application/pdf" if key.endswith(".pdf") else "application/octet-stream",
            Metadata={"sha256": digest},
        ))
        return digest

    def get(self, session: Session, key: str, *, sha256: str | None = None) -> bytes:
        def read() -> tuple[bytes, dict[str, str]]:
            response = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            return response["Body"].read(), response.get("Metadata", {})

        data, metadata = self._call("read", key, read)
        return verified(key, data, sha256 or metadata.get("sha256"))

    def exists(self, session: Session, key: str) -> bool:
        try:
            self._call("find", key, lambda: self._client.head_object(Bucket=self.bucket, Key=self.object_key(key)))
        except BlobNotFound:
            return False
        return True

    def entries(self, under: str = "") -> Iterator[tuple[str, dt.datetime]]:
        """(key without the prefix, last modified) of every object under ``under``, for orphan collection."""
        pages = iter(self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + under))
        while (page := self._call("list", under or "/", lambda: next(pages, None))) is not None:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix):], item["LastModified"]

    def delete(self, session: Session, key: str) -> None:
        """Remove an orphan object (a key no licence names); deleting a missing key is not an error."""
        self._call("delete", key, lambda: self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key)))

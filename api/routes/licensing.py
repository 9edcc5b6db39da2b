"""Wiring of the licence library for the API: the service (with its sealer) and the caller as an Actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.problems import register_problem_type
from certificates import bulk, identifiers, issuance, lifecycle, records, service, types
from certificates.blobs import (
    BlobCorrupted, BlobNotFound, BlobStore, BlobStoreUnavailable, DatabaseBlobStore, FileBlobStore,
)
from certificates.issuance import Actor
from certificates.service import LicenceService
from ecert.errors import ConfigurationError, Forbidden
from ecert.runtime import Runtime
from ecert.settings import Settings

__all__ = ["licence_service", "actor_of", "department_for", "lifespan", "blob_store_for"]


_ERRORS = (
    identifiers.InvalidLicenceNumber, lifecycle.InvalidTransition, lifecycle.InvalidEffectiveDate,
    types.UnknownLicenceType, types.ForeignLicenceType, issuance.IdempotencyKeyReused,
    issuance.IdempotentRequestInProgress, records.LicenceNotFound, bulk.JobNotFound, bulk.JobFinished,
    service.NoDocument, BlobNotFound, BlobStoreUnavailable, BlobCorrupted,
)
for _error in _ERRORS:
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())


def _sealing(runtime: Runtime) -> tuple[Any, Any]:
    """The department seal keys (ca) and the PDF sealer (signing), once those packages provide them."""
    from api.routes import licence_sealing

    return licence_sealing.build(runtime)


def blob_store_for(settings: Settings) -> BlobStore:
    """Where sealed PDFs live: in the database (default), as files or in an S3 bucket (``ECERT_BLOB_STORE``)."""
    if settings.blob_store == "filesystem":
        return FileBlobStore(settings.blob_dir or settings.data_dir / "blobs")
    if settings.blob_store == "s3":
        return _s3_store(settings)
    return DatabaseBlobStore()


def _s3_store(settings: Settings) -> BlobStore:
    try:
        from certificates.blobs_s3 import S3BlobStore
    except ImportError as exc:  # boto3 is the optional extra ``s3``
        raise ConfigurationError("blob_store s3 needs boto3: pip install 'ecert[s3]'") from exc
    secret = settings.s3_secret_access_key
    return S3BlobStore(
        bucket=settings.s3_bucket or "", endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
        access_key_id=settings.s3_access_key_id, secret_access_key=secret.get_secret_value() if secret else None,
        prefix=settings.s3_prefix, path_style=settings.s3_path_style, timeout=settings.s3_timeout,
    )


def licence_service(runtime: Runtime) -> LicenceService:
    def factory(rt: Runtime) -> LicenceService:
        seal_keys, sealer = _sealing(rt)
        service = LicenceService(
            engine=rt.engine, keystore=rt.keystore, clock=rt.clock, blobs=blob_store_for(rt.settings), seal_keys=seal_keys,
            sealer=sealer, public_url=rt.settings.public_url,
        )
        service.start()  # resumes bulk jobs left open by a previous run; exits when there are none
        return service

    return runtime.service("licences", factory)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Start the bulk worker with the app (so open jobs resume after a restart); stop it on shutdown."""
    runtime: Runtime = app.state.runtime
    await run_in_threadpool(licence_service, runtime)
    yield
    service = runtime.services.get("licences")
    if service is not None:
        await run_in_threadpool(service.stop)


def actor_of(principal: Any) -> Actor:
    """The API caller as the library's Actor: a department client, or a platform admin (no department)."""
    department = getattr(principal, "department", None)
    subject = getattr(principal, "subject", None) or str(principal)
    return Actor(subject=str(subject), department=department)


def department_for(actor: Actor, requested: str | None) -> str:
    """The department a request acts for: the caller's own; an admin must name one."""
    if actor.department is not None:
        if requested not in (None, actor.department):
            raise Forbidden(f"you act for department {actor.department}, not {requested}")
        return actor.department
    if not requested:
        raise Forbidden("a platform administrator must name the department")
    return requested

"""The composition root: every service of the running system, built once, in one place.

:meth:`Container.build` is the only place where domain services are constructed; the API (``api.deps`` hands
them to routes as typed dependencies) and the ``ecert`` commands both use it. Building starts nothing:
:meth:`Container.start` starts the background work of a serving process (CA maintenance, the bulk worker, the
transparency publisher, the change feed of link verification) and :meth:`Container.stop` ends it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from audit.publisher import Publisher
from ca.service import CertificateAuthority, ca_config
from certificates.blobs import BlobStore, DatabaseBlobStore, FileBlobStore
from certificates.holders import PiiVault
from certificates.service import LicenceService
from ecert.clock import Clock
from ecert.errors import ConfigurationError, EcertError
from ecert.ratelimit import Limiter, shared_limit
from ecert.readiness import Readiness
from ecert.runtime import Runtime
from ecert.settings import Settings
from identity.admission import LoginAdmission
from identity.tokens import AccessTokens, TokenKeys
from signing import PadesSealer, UploadLimits
from verify.batching import LookupBatcher
from verify.findings import PdfLimits
from verify.link import LinkVerifier, VerificationCounter
from verify.online import PdfVerifier
from verify.publisher import BundlePublisher

__all__ = ["Container", "Verification", "blob_store_for", "api_audience"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verification:
    """Public verification: link lookups (batched), PDF checks, the trust bundle and the per-address limit."""

    counter: VerificationCounter
    link: LinkVerifier
    lookups: LookupBatcher
    pdf: PdfVerifier
    bundles: BundlePublisher
    limiter: Limiter
    max_upload: int
    timeout: float


@dataclass(frozen=True)
class Container:
    """The services of one running system over one :class:`Runtime` (settings, database, key store, clock)."""

    runtime: Runtime
    ca: CertificateAuthority
    blobs: BlobStore
    sealer: PadesSealer
    licences: LicenceService
    tokens: AccessTokens
    pii: PiiVault
    login_limit: Limiter
    login_admission: LoginAdmission
    verification: Verification
    publisher: Publisher
    readiness: Readiness

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @classmethod
    def build(cls, runtime: Runtime) -> Container:
        """Every service, each constructed once (tests replace one with :meth:`replace`)."""
        settings, engine, keystore, clock = runtime.settings, runtime.engine, runtime.keystore, runtime.clock
        ca = CertificateAuthority(engine=engine, keystore=keystore, clock=clock, config=ca_config(settings))
        blobs = blob_store_for(settings)
        sealer = PadesSealer(keystore, ca, ca, ca, clock=clock, upload_limits=UploadLimits(max_bytes=settings.max_upload_bytes))
        tokens = AccessTokens(TokenKeys(keystore), issuer=settings.public_url.rstrip("/"), audience=api_audience(settings),
                              clock=clock)
        return cls(
            runtime=runtime, ca=ca, blobs=blobs, sealer=sealer, tokens=tokens,
            licences=LicenceService(engine=engine, keystore=keystore, clock=clock, blobs=blobs, seal_keys=ca, sealer=sealer,
                                    public_url=settings.public_url, queue_limit=settings.issue_queue,
                                    concurrency=settings.issue_concurrency),
            pii=PiiVault(keystore),
            login_limit=shared_limit(engine, settings, "login", settings.login_rate_per_second, settings.login_burst,
                                     direct=True),
            login_admission=LoginAdmission(settings.login_queue, target_seconds=settings.login_latency_target_seconds,
                                           workers=settings.workers),
            verification=_verification(runtime, ca, tokens),
            publisher=Publisher(engine, keystore, clock),
            readiness=Readiness(runtime, blobs),
        )

    def replace(self, **changes: Any) -> Container:
        """A copy with some services replaced (tests)."""
        return dataclasses.replace(self, **changes)

    def start(self) -> None:
        """Start the background work of a serving process; a service that cannot start yet retries by itself."""
        try:
            self.ca.bootstrap()
        except Exception:  # noqa: BLE001 - Vault or the database is down: serve anyway (readyz says so), retry later
            log.warning("the CA could not be loaded at startup; retrying in the background", exc_info=True)
        self.ca.start_maintenance()
        try:  # the token keys and the upper transparency tree into memory now, not on the first request
            self.tokens.keys.info()
        except EcertError as exc:
            log.warning("token keys not loaded at startup: %s", exc.detail)
        try:
            self.verification.link.prover.head()
        except Exception:  # noqa: BLE001 - the database is not there yet: the first lookup loads it (or answers 503)
            log.warning("verification warm-up skipped; the first lookup will load the transparency tree")
        self.verification.link.listen()
        self.publisher.start()
        self.licences.start()  # resumes bulk jobs left open by a previous run; exits when there are none

    def stop(self) -> None:
        """Stop what :meth:`start` started; keep the last few seconds of verification counts."""
        self.licences.stop()
        self.publisher.stop()
        self.verification.link.close()
        try:
            self.verification.counter.flush()
        except Exception:  # noqa: BLE001 - shutting down with the database gone: the counts are lost, nothing else
            pass
        self.ca.stop_maintenance()


def _verification(runtime: Runtime, ca: CertificateAuthority, tokens: AccessTokens) -> Verification:
    settings, engine, clock = runtime.settings, runtime.engine, runtime.clock
    counter = VerificationCounter(engine, clock)
    link = LinkVerifier(runtime.reader, clock, public_url=settings.public_url, counter=counter)
    return Verification(
        counter=counter, link=link, lookups=LookupBatcher(link, readers=settings.verify_lookup_threads),
        pdf=PdfVerifier(engine, clock, ca, link, limits=PdfLimits(max_bytes=settings.max_upload_bytes)),
        bundles=BundlePublisher(engine, runtime.keystore, clock, ca, token_keys=tokens.keys.jwks),
        limiter=shared_limit(engine, settings, "verify", settings.verify_rate_per_second, settings.verify_burst),
        max_upload=settings.max_upload_bytes, timeout=settings.verify_timeout_seconds,
    )


def api_audience(settings: Settings) -> str:
    """The ``aud`` of access tokens for ecert's own API."""
    return settings.public_url.rstrip("/") + "/api"


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

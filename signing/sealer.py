"""PAdES sealing of e-licences: render, sign with the department's Vault-held seal, timestamp,
embed validation data (B-LT).

A batch of N documents costs one ``sign_batch`` round trip to Vault: every document is brought
to its final pre-signing state first (pyHanko's interrupted signing), the N signed-attribute
blobs are signed together, then each PDF is finished (timestamp token, CMS, DSS).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTBSDocument
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import DocumentSecurityStore

from certificates.sealing import LicenceDocument, SealedRecord
from ecert.clock import Clock, SystemClock
from keys import KeyStore
from keys.errors import KeyStoreError
from signing.appearance import seal_stamp_style, seal_text_params
from signing.errors import InvalidPdf, SealingUnavailable, SealMisconfigured
from signing.evidence import Evidence, gather_evidence
from signing.material import RevocationSource, Seal, SealDirectory, TimestampAuthority
from signing.record import embed_record
from signing.render import SEAL_BOX, render_licence
from signing.signer import AuthorityTimeStamper, VaultSigner
from signing.uploads import UploadLimits, check_upload

__all__ = ["PadesSealer", "SEAL_FIELD"]

SEAL_FIELD = "ecert-seal"

_MD = "sha256"
_STAMP_W, _STAMP_H = SEAL_BOX[2] - SEAL_BOX[0], SEAL_BOX[3] - SEAL_BOX[1]


@dataclass
class _Seal:
    """Everything per seal credential that does not change between batches."""

    credential: Seal
    signer: VaultSigner
    name: str
    bytes_reserved: int | None = None
    evidence: Evidence | None = None
    evidence_until: float = 0.0


@dataclass(frozen=True)
class _Job:
    """One PDF to seal: where its stamp goes, and whether the seal certifies it (first signature)."""

    pdf: bytes
    page: int
    box: tuple[float, float, float, float]
    certify: bool
    record: SealedRecord | None = None


@dataclass
class _Ticket:
    """A caller's jobs waiting for the pipeline, and their outcome."""

    seal: _Seal
    jobs: list[_Job]
    result: list[bytes] | None = None
    error: BaseException | None = None
    done: bool = False


def _by_seal(tickets: list[_Ticket]) -> list[list[_Ticket]]:
    groups: dict[int, list[_Ticket]] = {}
    for ticket in tickets:
        groups.setdefault(id(ticket.seal), []).append(ticket)
    return list(groups.values())


@dataclass
class _Pending:
    output: io.BytesIO
    digest: PreparedByteRangeDigest
    tbs: PdfTBSDocument
    signed_attrs: cms.CMSAttributes


def _department_name(certificate: x509.Certificate, fallback: str) -> str:
    """The department's name as its seal certificate states it (OU under a provincial O, else O, else CN)."""
    for oid in (NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        values = certificate.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return fallback


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


class PadesSealer:
    """Implements :class:`certificates.sealing.Sealer` (and sealing of uploaded PDFs).

    ``tsa`` None gives PAdES B-B; ``revocation`` None leaves out the DSS (B-T). Both given: B-LT.
    The validation data (CRLs, OCSP responses, and the check that the seal and TSA certificates
    validate with them) is kept per seal for ``evidence_ttl`` seconds, so single-document calls
    do not each ask the CA for it: a seal revoked meanwhile stops sealing within that time.
    Threads may share one sealer; they seal one batch at a time (see ``_pipeline``), and calls
    that arrive while a batch runs are sealed together in the next one (see ``_run``).
    """

    def __init__(
        self,
        keystore: KeyStore,
        seals: SealDirectory,
        tsa: TimestampAuthority | None,
        revocation: RevocationSource | None,
        *,
        clock: Clock | None = None,
        upload_limits: UploadLimits = UploadLimits(),
        evidence_ttl: float = 60.0,
    ) -> None:
        self.keystore = keystore
        self.seals = seals
        self.revocation = revocation
        self.clock = clock or SystemClock()
        self.upload_limits = upload_limits
        self.evidence_ttl = evidence_ttl
        self.timestamper = AuthorityTimeStamper(tsa) if tsa is not None else None
        self._seals: dict[tuple[str, bytes], _Seal] = {}
        self._lock = threading.Lock()
        # pyHanko's objects (asn1crypto) parse lazily on first access, which is not thread-safe,
        # and the seal state shares them; signing is CPU-bound Python anyway (the GIL), so one
        # pipeline at a time per sealer costs only the overlap of Vault/TSA waits. Scale with
        # worker processes. Rendering runs outside the lock.
        self._pipeline = threading.Lock()
        self._waiting: list[_Ticket] = []

    # -- Sealer ---------------------------------------------------------------------------
    def seal(self, department_code: str, documents: Sequence[LicenceDocument]) -> list[bytes]:
        """Render and seal each document; one Vault round trip for the whole batch."""
        if not documents:
            return []
        seal = self._seal_for(department_code)
        pdfs = []
        for document in documents:
            if document.department_code != department_code:
                raise SigningError(f"{document.number} belongs to {document.department_code}, not {department_code}")
            rendered = render_licence(document, issuer_name=seal.name)
            pdfs.append(_Job(rendered.pdf, rendered.seal_page, SEAL_BOX, certify=True, record=document.record()))
        return self._run(seal, pdfs)

    def seal_uploaded(self, department_code: str, pdf_bytes: bytes, record: SealedRecord | None = None) -> bytes:
        """Seal a department's own PDF after checking it (:class:`InvalidPdf` if we refuse it), ``record`` in the sealed revision."""
        checked = check_upload(pdf_bytes, self.upload_limits)
        x0, y0, x1, _ = checked.last_page_box
        width, height = min(_STAMP_W, x1 - x0), _STAMP_H
        box = (x1 - width - 18, y0 + 18, x1 - 18, y0 + 18 + height)
        seal = self._seal_for(department_code)
        job = _Job(pdf_bytes, checked.pages - 1, box, certify=not checked.signed, record=record)
        try:
            return self._run(seal, [job])[0]
        except (PdfError, SigningError) as exc:  # the document itself forbids or breaks the seal
            raise InvalidPdf(f"the PDF cannot be sealed: {exc}") from exc

    # -- credentials ---------------------------------------------------------------------
    def _seal_for(self, department_code: str) -> _Seal:
        credential = self.seals.current_seal(department_code)
        cache_key = (str(credential.key), _der(credential.certificate))
        with self._lock:
            seal = self._seals.get(cache_key)
        if seal is None:
            seal = self._new_seal(credential)
            with self._lock:
                seal = self._seals.setdefault(cache_key, seal)  # racing threads end up sharing one
        return seal

    def _new_seal(self, credential: Seal) -> _Seal:
        if not credential.chain:
            raise SealMisconfigured(f"the seal of {credential.department_code} has no CA chain")
        try:
            vault_public = self.keystore.public_key(credential.key)
        except KeyStoreError as exc:
            raise SealMisconfigured(f"the seal key {credential.key} is not usable: {exc}") from exc
        if vault_public != credential.certificate.public_key():
            raise SealMisconfigured(
                f"the seal certificate of {credential.department_code} does not match Vault key {credential.key}"
            )
        signer = VaultSigner(self.keystore, credential.key, credential.certificate, credential.chain)
        return _Seal(credential, signer, _department_name(credential.certificate, credential.department_code))

    # -- the signing pipeline --------------------------------------------------------------
    def _run(self, seal: _Seal, jobs: list[_Job]) -> list[bytes]:
        """Seal ``jobs``, coalesced with whatever other threads queued meanwhile.

        Callers queue a ticket and take the pipeline lock; the thread that gets it seals every
        waiting ticket, one batch per seal (one Vault round trip, one TSA call), and the others
        find their result done. Concurrent single-licence requests so cost about what a batch does.
        """
        ticket = _Ticket(seal, jobs)
        with self._lock:
            self._waiting.append(ticket)
        with self._pipeline:
            if not ticket.done:
                with self._lock:
                    taken, self._waiting = self._waiting, []
                for group in _by_seal(taken):
                    self._seal_group(group)
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    def _seal_group(self, group: list[_Ticket]) -> None:
        """One batch for tickets of one seal; if it fails with several, each is retried alone."""
        jobs = [job for ticket in group for job in ticket.jobs]
        try:
            pdfs = self._seal_now(group[0].seal, jobs)
        except BaseException as exc:  # noqa: BLE001 - handed to the ticket's own thread to raise
            if len(group) > 1:
                for ticket in group:
                    self._seal_group([ticket])
                return
            group[0].error, group[0].done = exc, True
            return
        start = 0
        for ticket in group:
            ticket.result, ticket.done = pdfs[start : start + len(ticket.jobs)], True
            start += len(ticket.jobs)

    def _seal_now(self, seal: _Seal, jobs: list[_Job]) -> list[bytes]:
        try:
            return asyncio.run(self._seal_all(seal, jobs))
        except (TimestampRequestError, KeyStoreError) as exc:
            raise SealingUnavailable(f"sealing failed on a dependency: {exc}") from exc

    async def _seal_all(self, seal: _Seal, jobs: list[_Job]) -> list[bytes]:
        evidence = await self._evidence(seal)
        now = self.clock.now()
        pending = [await self._prepare(seal, evidence, now, job) for job in jobs]
        blobs = [p.signed_attrs.dump() for p in pending]
        imprints: list[bytes] = []
        try:
            signatures = seal.signer.prime(blobs)
            imprints = [hashlib.sha256(s).digest() for s in signatures]
            if self.timestamper is not None:
                self.timestamper.prime(imprints, _MD)
            return [await self._finish(seal, p) for p in pending]
        finally:  # a failed batch leaves nothing primed behind
            seal.signer.forget(blobs)
            if self.timestamper is not None:
                self.timestamper.forget(imprints, _MD)

    async def _evidence(self, seal: _Seal) -> Evidence | None:
        """Validation data, re-fetched and re-validated every ``evidence_ttl`` seconds per seal."""
        if self.revocation is None:
            return None
        if seal.evidence is None or time.monotonic() >= seal.evidence_until:
            evidence = await gather_evidence(seal.credential, seal.signer, self.timestamper, self.revocation)
            seal.evidence, seal.evidence_until = evidence, time.monotonic() + self.evidence_ttl
        return seal.evidence

    def _signer_for(self, seal: _Seal, job: _Job) -> PdfSigner:
        meta = PdfSignatureMetadata(
            field_name=SEAL_FIELD,
            md_algorithm=_MD,
            subfilter=fields.SigSeedSubFilter.PADES,
            name=seal.name,
            reason="电子证照签章 E-licence seal",
            location=seal.credential.department_code,
            certify=job.certify,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        )
        box = (round(job.box[0]), round(job.box[1]), round(job.box[2]), round(job.box[3]))
        spec = fields.SigFieldSpec(SEAL_FIELD, on_page=job.page, box=box)
        return PdfSigner(meta, signer=seal.signer, timestamper=self.timestamper, stamp_style=seal_stamp_style(), new_field_spec=spec)

    async def _prepare(
        self, seal: _Seal, evidence: Evidence | None, now: dt.datetime, job: _Job
    ) -> _Pending:
        writer = IncrementalPdfFileWriter(io.BytesIO(job.pdf), strict=True)
        if job.record is not None:
            embed_record(writer, job.record)
        if evidence is not None:
            # B-LT: the DSS goes into the same (signed) revision as the seal; no VRI (PAdES baseline)
            DocumentSecurityStore.supply_dss_in_writer(
                writer, None, certs=evidence.certs, ocsps=evidence.ocsps, crls=evidence.crls
            )
        pdf_signer = self._signer_for(seal, job)
        digest, tbs, output = await pdf_signer.async_digest_doc_for_signing(
            writer,
            bytes_reserved=seal.bytes_reserved,
            appearance_text_params=seal_text_params(seal.name, seal.credential.department_code, now),
        )
        if seal.bytes_reserved is None:
            seal.bytes_reserved = digest.reserved_region_end - digest.reserved_region_start - 2
        signed_attrs = await seal.signer.signed_attrs(
            digest.document_digest,
            _MD,
            attr_settings=PdfCMSSignedAttributes(signing_time=now),
            use_pades=True,
            timestamper=self.timestamper,
        )
        return _Pending(cast(io.BytesIO, output), digest, tbs, signed_attrs)  # pyHanko's own BytesIO: we gave it no stream

    async def _finish(self, seal: _Seal, pending: _Pending) -> bytes:
        signature_cms = await seal.signer.async_sign_prescribed_attributes(
            _MD, pending.signed_attrs, timestamper=self.timestamper
        )
        await PdfTBSDocument.async_finish_signing(
            pending.output,
            pending.digest,
            signature_cms,
            post_sign_instr=pending.tbs.post_sign_instructions,
        )
        return pending.output.getvalue()

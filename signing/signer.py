"""pyHanko back ends over our own services: a CMS signer whose key stays in Vault, and a
timestamper that asks the in-process TSA.

Both can be *primed* with a batch: :meth:`VaultSigner.prime` signs the digests of many
signed-attribute blobs in one ``sign_batch`` round trip and keeps the results until pyHanko asks
for them through :meth:`async_sign_raw`; :meth:`AuthorityTimeStamper.prime` does the same for
timestamp tokens when the TSA offers ``timestamp_batch``. Without priming, each falls back to
one call per signature.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.general import SigningError, as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, get_nonce
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ecert.errors import EcertError
from keys import KeyRef, KeyStore
from signing.material import BatchTimestampAuthority, TimestampAuthority

__all__ = ["VaultSigner", "AuthorityTimeStamper", "to_asn1"]

_T = TypeVar("_T")
_ECDSA_P256_MAX_DER = 72  # SEQUENCE { INTEGER r, INTEGER s }, both up to 33 bytes


_CONTENT_TYPE_DATA = cms.CMSAttribute.load(simple_cms_attribute("content_type", "data").dump())


def to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


class VaultSigner(Signer):
    """Signs CMS signed attributes with one Vault transit key version (ECDSA P-256, SHA-256)."""

    def __init__(
        self,
        keystore: KeyStore,
        key: KeyRef,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        super().__init__(
            signing_cert=to_asn1(certificate),
            cert_registry=SimpleCertificateStore.from_certs([to_asn1(c) for c in chain]),
            embed_roots=True,
        )
        self.keystore = keystore
        self.key = key
        self.round_trips = 0
        self._primed: dict[bytes, bytes] = {}
        self._signing_certificate: cms.CMSAttribute | None = None
        self._lock = threading.Lock()

    async def signed_attrs(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        attr_settings: PdfCMSSignedAttributes | None = None,
        content_type: str = "data",
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        dry_run: bool = False,
        is_pdf_sig: bool = True,
    ) -> cms.CMSAttributes:
        """PAdES signed attributes, the constant signing-certificate one kept as parsed DER.

        For a plain PAdES signature pyHanko emits contentType, messageDigest and
        signingCertificateV2; asn1crypto builds and serialises the last one slowly
        (milliseconds, copying the issuer name), and it is the same for every signature of this
        certificate. Anything else (CAdES extras, non-PAdES) goes through pyHanko unchanged.
        """
        plain = attr_settings is None or (
            attr_settings.cades_signed_attrs is None and attr_settings.adobe_revinfo_attr is None
        )
        if not (use_pades and plain and content_type == "data" and digest_algorithm == "sha256"):
            return await super().signed_attrs(
                data_digest, digest_algorithm, attr_settings=attr_settings, content_type=content_type,
                use_pades=use_pades, timestamper=timestamper, dry_run=dry_run, is_pdf_sig=is_pdf_sig,
            )
        if self._signing_certificate is None:
            assert self.signing_cert is not None
            attr = simple_cms_attribute("signing_certificate_v2", as_signing_certificate_v2(self.signing_cert))
            self._signing_certificate = cms.CMSAttribute.load(attr.dump())
        return cms.CMSAttributes(
            [_CONTENT_TYPE_DATA, simple_cms_attribute("message_digest", data_digest), self._signing_certificate]
        )

    def prime(self, blobs: Sequence[bytes]) -> list[bytes]:
        """Sign the SHA-256 digests of ``blobs`` in one batch, kept for :meth:`async_sign_raw`."""
        digests = [hashlib.sha256(blob).digest() for blob in blobs]
        if not digests:
            return []
        signatures = self.keystore.sign_batch(self.key, digests, hash_name="sha256")
        self.round_trips += 1
        with self._lock:
            for digest, signature in zip(digests, signatures, strict=True):
                self._check_version(signature.key)
                self._primed[digest] = signature.value
        return [signature.value for signature in signatures]

    def forget(self, blobs: Sequence[bytes]) -> None:
        """Drop primed signatures that were not used (a batch that failed half-way)."""
        with self._lock:
            for blob in blobs:
                self._primed.pop(hashlib.sha256(blob).digest(), None)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm.lower() != "sha256":
            raise SigningError(f"the seal key signs SHA-256 only, not {digest_algorithm}")
        if dry_run:
            return bytes(_ECDSA_P256_MAX_DER)
        digest = hashlib.sha256(data).digest()
        with self._lock:
            primed = self._primed.pop(digest, None)
        if primed is not None:
            return primed
        signature = self.keystore.sign(self.key, digest, hash_name="sha256")
        self.round_trips += 1
        self._check_version(signature.key)
        return signature.value

    def _check_version(self, used: KeyRef) -> None:
        if used != self.key:
            raise SigningError(f"Vault signed with {used}, not the certified {self.key}")


def _imprint(token: cms.ContentInfo) -> tuple[str, bytes, int | None]:
    info = token["content"]["encap_content_info"]["content"].parsed
    imprint = info["message_imprint"]
    return imprint["hash_algorithm"]["algorithm"].native, imprint["hashed_message"].native, info["nonce"].native


class AuthorityTimeStamper(TimeStamper):
    """A pyHanko :class:`TimeStamper` that calls :class:`TimestampAuthority` in-process (no HTTP).

    Every token is checked to be over the imprint (and nonce) we asked for.
    """

    def __init__(self, authority: TimestampAuthority) -> None:
        super().__init__(include_nonce=True)
        self.authority = authority
        self.calls = 0
        self._primed: dict[tuple[str, bytes], cms.ContentInfo] = {}
        self._lock = threading.Lock()

    def prime(self, message_digests: Sequence[bytes], md_algorithm: str) -> None:
        """Fetch tokens for many imprints at once if the TSA can; otherwise do nothing."""
        if not message_digests or not isinstance(self.authority, BatchTimestampAuthority):
            return
        authority = self.authority
        tokens = self._call(lambda: authority.timestamp_batch(list(message_digests), md_algorithm))
        self.calls += 1
        if len(tokens) != len(message_digests):
            raise TimestampRequestError(f"the TSA returned {len(tokens)} tokens for {len(message_digests)} imprints")
        with self._lock:
            for digest, der in zip(message_digests, tokens, strict=True):
                token = self._checked(der, digest, md_algorithm, None)
                self._primed[(md_algorithm, digest)] = token

    def forget(self, message_digests: Sequence[bytes], md_algorithm: str) -> None:
        with self._lock:
            for digest in message_digests:
                self._primed.pop((md_algorithm, digest), None)

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        with self._lock:
            primed = self._primed.pop((md_algorithm, message_digest), None)
        if primed is not None:
            return primed
        nonce = get_nonce()
        der = self._call(lambda: self.authority.timestamp(message_digest, md_algorithm, nonce=nonce))
        self.calls += 1
        return self._checked(der, message_digest, md_algorithm, nonce)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        raise NotImplementedError("AuthorityTimeStamper answers async_timestamp directly")

    @staticmethod
    def _call(request: Callable[[], _T]) -> _T:
        """Our own errors (Vault down...) pass through; anything else the TSA raises is a refusal."""
        try:
            return request()
        except EcertError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. ca.tsa.TimestampRejected
            raise TimestampRequestError(f"the TSA refused: {exc}") from exc

    @staticmethod
    def _checked(der: bytes, digest: bytes, md_algorithm: str, nonce: int | None) -> cms.ContentInfo:
        try:
            token = cms.ContentInfo.load(der)
            algorithm, imprint, got_nonce = _imprint(token)
        except (ValueError, TypeError, KeyError) as exc:
            raise TimestampRequestError(f"the TSA returned a malformed token: {exc}") from exc
        if algorithm != md_algorithm.lower() or imprint != digest:
            raise TimestampRequestError("the TSA stamped a different message imprint")
        if nonce is not None and got_nonce != nonce:
            raise TimestampRequestError("the TSA returned a different nonce")
        return token

"""An RFC 6960 OCSP responder for the issuing CA, signing with a delegated responder certificate.

:func:`respond` never raises for bad input: a malformed request gets ``malformedRequest``, a
request about a CA we do not answer for gets ``unauthorized``, an unknown serial gets ``unknown``.
Answers without a nonce are cached briefly (RFC 5019 style); the cache key holds the status, so
a revocation is visible on the very next request.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca.hierarchy import Authority, Delegate
from keys import KeyStore, remote_private_key

__all__ = ["CertStatus", "Responder", "MAX_REQUEST_BYTES"]

MAX_REQUEST_BYTES = 16 * 1024
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@dataclass(frozen=True)
class CertStatus:
    """What the CA knows about one serial: ``None`` from the lookup means it never issued it."""

    revoked_at: dt.datetime | None
    reason: str | None


StatusLookup = Callable[[str, int], "CertStatus | None"]  # (issuer name, serial) -> status


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


class Responder:
    """Answers OCSP requests about certificates of ``authority`` with the ``delegate`` responder."""

    def __init__(self, keystore: KeyStore, authority: Authority, delegate: Delegate, lookup: StatusLookup, *,
                 validity: dt.timedelta = dt.timedelta(hours=1), cache_size: int = 100_000) -> None:
        self._authority = authority
        self._delegate = delegate
        self._lookup = lookup
        self._validity = validity
        self._signer = remote_private_key(keystore, delegate.key)
        self._ids = {
            name: (authority.name_hash(name), authority.key_hash(name)) for name in _HASHES
        }
        self._cache: OrderedDict[tuple[object, ...], tuple[bytes, dt.datetime]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def respond(self, request_der: bytes, now: dt.datetime) -> bytes:
        """A DER OCSPResponse for a DER OCSPRequest (malformed input included)."""
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
            name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
            nonce = _nonce(request)
        except (ValueError, TypeError, UnsupportedAlgorithm):  # multi-request, unknown hash OIDs (found by hypothesis)
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if algorithm.name not in _HASHES or self._ids[algorithm.name] != (name_hash, key_hash):
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        status = self._lookup(self._authority.name, serial)
        key = (algorithm.name, serial, status)
        if nonce is None:
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None and cached[1] > now:
                    self._cache.move_to_end(key)
                    return cached[0]
        der, fresh_until = self._sign(algorithm, name_hash, key_hash, serial, status, nonce, now)
        if nonce is None:
            with self._lock:
                self._cache[key] = (der, fresh_until)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return der

    def _sign(self, algorithm: hashes.HashAlgorithm, name_hash: bytes, key_hash: bytes, serial: int,
              status: CertStatus | None, nonce: bytes | None, now: dt.datetime) -> tuple[bytes, dt.datetime]:
        this_update = now.replace(microsecond=0)
        if status is None:
            cert_status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif status.revoked_at is not None:
            cert_status, revoked_at = ocsp.OCSPCertStatus.REVOKED, status.revoked_at
            reason = x509.ReasonFlags(status.reason) if status.reason and status.reason != "unspecified" else None
        else:
            cert_status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=serial, algorithm=algorithm,
                cert_status=cert_status, this_update=this_update, next_update=this_update + self._validity,
                revocation_time=revoked_at, revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self._delegate.certificate)
            .certificates([self._delegate.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self._signer, hashes.SHA256())
        # a cached answer is re-signed well before its nextUpdate
        return response.public_bytes(serialization.Encoding.DER), this_update + self._validity / 4


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        ext = request.extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return None
    nonce = ext.value.nonce
    if not 1 <= len(nonce) <= 128:
        raise ValueError("nonce length out of range")
    return nonce

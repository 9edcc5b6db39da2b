"""An RFC 3161 time-stamping authority whose key lives in Vault.

:meth:`TimestampAuthority.respond` turns a DER ``TimeStampReq`` into a DER ``TimeStampResp`` and
never raises for bad input (the protocol's own ``rejection`` with a failure reason instead);
:meth:`TimestampAuthority.timestamp` is the in-process call the PDF sealer uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.hierarchy import Delegate
from keys import KeyStore

__all__ = ["TimestampAuthority", "RejectionResponse", "POLICY_OID", "MAX_REQUEST_BYTES", "TimestampRejected"]

#: ETSI EN 319 421 best-practices time-stamp policy, which this TSA follows.
POLICY_OID = "0.4.0.2023.1.1"
MAX_REQUEST_BYTES = 8 * 1024
_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def _frozen(value: core.Asn1Value) -> core.Asn1Value:
    """``value`` re-loaded from its DER, so asn1crypto serialises it by copying bytes.

    asn1crypto parses lazily and is not thread-safe: objects made from these are built under the
    authority's lock."""
    return type(value).load(value.dump())


class RejectionResponse(core.Sequence):
    """A TimeStampResp without a token (asn1crypto's own class insists on one)."""

    _fields = [("status", tsp.PKIStatusInfo)]


class TimestampRejected(Exception):
    """A request the TSA refuses; ``failure`` is the PKIFailureInfo bit name."""

    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


class TimestampAuthority:
    def __init__(self, keystore: KeyStore, delegate: Delegate, chain: tuple[x509.Certificate, ...] = ()) -> None:
        self._keystore = keystore
        self._delegate = delegate
        self._lock = threading.Lock()
        self._cert = asn1_x509.Certificate.load(delegate.certificate.public_bytes(serialization.Encoding.DER))
        self._chain = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]
        self._ess = tsp.SigningCertificateV2({
            "certs": [tsp.ESSCertIDv2({
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "cert_hash": hashlib.sha256(self._cert.dump()).digest(),
                "issuer_serial": tsp.IssuerSerial({
                    "issuer": [asn1_x509.GeneralName({"directory_name": self._cert.issuer})],
                    "serial_number": self._cert.serial_number,
                }),
            })]
        })

        # Constant parts kept as parsed DER: asn1crypto re-serialises freshly built objects (tens of ms per token).
        self._tsa_name = _frozen(asn1_x509.GeneralName({"directory_name": self._cert.subject}))
        self._ess_attr = _frozen(cms.CMSAttribute({"type": "signing_certificate_v2", "values": [self._ess]}))
        self._type_attr = _frozen(cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}))
        self._sid = _frozen(cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": self._cert.issuer, "serial_number": self._cert.serial_number,
        })}))
        self._certs = _frozen(cms.CertificateSet([self._cert, *self._chain]))

    @property
    def certificate(self) -> x509.Certificate:
        return self._delegate.certificate

    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None,
                  now: dt.datetime | None = None, include_certs: bool = True) -> bytes:
        """A DER ``TimeStampToken`` (CMS ContentInfo) over ``message_imprint``."""
        if _DIGEST_SIZES.get(hash_name) != len(message_imprint):
            raise TimestampRejected("bad_alg", f"a {hash_name} imprint of {len(message_imprint)} bytes is not supported")
        return self._token(message_imprint, hash_name, nonce, now or dt.datetime.now(dt.timezone.utc), include_certs).dump()

    def respond(self, request_der: bytes, now: dt.datetime) -> bytes:
        """A DER ``TimeStampResp`` for a DER ``TimeStampReq``: granted, or rejection with the reason."""
        try:
            request = self._parse(request_der)
            imprint = request["message_imprint"]
            token = self._token(
                imprint["hashed_message"].native, imprint["hash_algorithm"]["algorithm"].native,
                request["nonce"].native, now, bool(request["cert_req"].native),
            )
        except TimestampRejected as exc:
            return RejectionResponse({
                "status": {"status": "rejection", "status_string": [exc.text], "fail_info": {exc.failure}},
            }).dump()
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    @staticmethod
    def _parse(request_der: bytes) -> tsp.TimeStampReq:
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            raise TimestampRejected("bad_data_format", "the request is empty or too large")
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            _ = request.native  # parse every field now, not later
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # AttributeError: e.g. an ObjectDescriptor
            raise TimestampRejected("bad_data_format", f"the request is not a DER TimeStampReq: {exc}") from exc
        if request["version"].native != "v1":
            raise TimestampRejected("bad_request", "only version 1 requests are supported")
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if _DIGEST_SIZES.get(algorithm) != len(imprint["hashed_message"].native):
            raise TimestampRejected("bad_alg", f"unsupported imprint algorithm {algorithm} or wrong digest length")
        policy = request["req_policy"].native
        if policy is not None and policy != POLICY_OID:
            raise TimestampRejected("unaccepted_policy", f"this TSA only issues under policy {POLICY_OID}")
        if request["extensions"].native:
            raise TimestampRejected("unaccepted_extension", "request extensions are not supported")
        return request

    def timestamp_batch(self, message_imprints: list[bytes], hash_name: str, *, now: dt.datetime | None = None) -> list[bytes]:
        """Tokens for many imprints with one Vault round trip (bulk sealing)."""
        for imprint in message_imprints:
            if _DIGEST_SIZES.get(hash_name) != len(imprint):
                raise TimestampRejected("bad_alg", f"a {hash_name} imprint of {len(imprint)} bytes is not supported")
        at = now or dt.datetime.now(dt.timezone.utc)
        with self._lock:
            parts = [self._to_be_signed(imprint, hash_name, None, at) for imprint in message_imprints]
        signatures = self._keystore.sign_batch(self._delegate.key, [digest for _, _, digest in parts], hash_name="sha256")
        with self._lock:
            return [self._assemble(content, attrs, sig.value, True).dump() for (content, attrs, _), sig in zip(parts, signatures)]

    def _token(self, imprint: bytes, hash_name: str, nonce: int | None, now: dt.datetime, include_certs: bool) -> cms.ContentInfo:
        with self._lock:
            content, signed_attrs, digest = self._to_be_signed(imprint, hash_name, nonce, now)
        signature = self._keystore.sign(self._delegate.key, digest, hash_name="sha256")
        with self._lock:
            token = self._assemble(content, signed_attrs, signature.value, include_certs)
            token.dump()
        return token

    def _to_be_signed(self, imprint: bytes, hash_name: str, nonce: int | None, now: dt.datetime) -> tuple[bytes, cms.CMSAttributes, bytes]:
        info = {
            "version": "v1",
            "policy": POLICY_OID,
            "message_imprint": {"hash_algorithm": {"algorithm": hash_name}, "hashed_message": imprint},
            "serial_number": secrets.randbits(127) | 1,
            "gen_time": now.astimezone(dt.timezone.utc).replace(microsecond=(now.microsecond // 1000) * 1000),
            "accuracy": {"seconds": 1},
            "ordering": False,
            "tsa": self._tsa_name,
        }
        if nonce is not None:
            info["nonce"] = nonce
        content = tsp.TSTInfo(info).dump()
        signed_attrs = cms.CMSAttributes([
            self._type_attr,
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": core.UTCTime(now.replace(microsecond=0))})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
            self._ess_attr,
        ])
        return content, signed_attrs, hashlib.sha256(signed_attrs.dump()).digest()

    def _assemble(self, content: bytes, signed_attrs: cms.CMSAttributes, signature: bytes, include_certs: bool) -> cms.ContentInfo:
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": self._sid,
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        })
        fields: dict[str, object] = {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
            "signer_infos": [signer],
        }
        if include_certs:
            fields["certificates"] = self._certs
        return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(fields)})

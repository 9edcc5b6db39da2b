"""A small real PKI for the signing tests and bench: every key in Vault, nothing mocked.

root CA -> issuing CA -> {department seal, TSA}; CRLs from both CAs, OCSP from the issuing CA,
an RFC 3161 TSA that signs TSTInfo with its Vault key. It stands in for ``ca`` (which implements
the same protocols) until that package lands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys import KeyRef, KeyStore, KeyType, remote_private_key
from signing.material import SealCredential

HOUR = dt.timedelta(hours=1)


def _name(cn: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(parts)


@dataclass
class Authority:
    """A CA: its certificate and its Vault key."""

    key: KeyRef
    certificate: x509.Certificate
    signing_key: ec.EllipticCurvePrivateKey
    revoked: dict[int, dt.datetime] = field(default_factory=dict)


class TestPki:
    """Root, issuing CA, seals per department and one TSA, built through cryptography's builders."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, keystore: KeyStore, *, now: dt.datetime | None = None) -> None:
        self.keystore = keystore
        self.now = now or dt.datetime.now(dt.timezone.utc)
        self.tag = uuid.uuid4().hex[:8]
        self.root = self._authority("root", _name("ecert Test Root CA", "ecert"), None, path_length=1)
        self.issuing = self._authority("issuing", _name("ecert Test Issuing CA", "ecert"), self.root, path_length=0)
        tsa_key = self._key("tsa")
        self.tsa_certificate = self._leaf(
            _name("ecert Test TSA", "ecert"), tsa_key, eku=ExtendedKeyUsageOID.TIME_STAMPING, non_repudiation=False
        )
        self.tsa = TestTsa(keystore, tsa_key, self.tsa_certificate, (self.issuing.certificate, self.root.certificate))
        self.revocation = TestRevocation(self)
        self.seals: dict[str, SealCredential] = {}

    # -- building ---------------------------------------------------------------------------
    def _key(self, role: str) -> KeyRef:
        return self.keystore.create(f"test-pki-{role}-{self.tag}", KeyType.EC_P256).latest

    def _authority(self, role: str, subject: x509.Name, parent: Authority | None, *, path_length: int) -> Authority:
        key = self._key(role)
        private = remote_private_key(self.keystore, key)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        public = private.public_key()
        issuer_name = parent.certificate.subject if parent else subject
        issuer_key = parent.signing_key if parent else private
        builder = (
            self._base(subject, issuer_name, public, valid=dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        )
        return Authority(key, builder.sign(issuer_key, hashes.SHA256()), private)

    def _base(self, subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, *, valid: dt.timedelta) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - HOUR)
            .not_valid_after(self.now + valid)
        )

    def _leaf(self, subject: x509.Name, key: KeyRef, *, eku: x509.ObjectIdentifier | None, non_repudiation: bool) -> x509.Certificate:
        public = self.keystore.public_key(key)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        builder = (
            self._base(subject, self.issuing.certificate.subject, public, valid=dt.timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, non_repudiation, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuing.signing_key.public_key()),
                critical=False,
            )
        )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
        return builder.sign(self.issuing.signing_key, hashes.SHA256())

    def add_department(self, code: str, name: str) -> SealCredential:
        key = self._key(f"seal-{code.lower()}")
        certificate = self._leaf(_name(f"{name} 电子印章", name), key, eku=None, non_repudiation=True)
        credential = SealCredential(code, key, certificate, (self.issuing.certificate, self.root.certificate))
        self.seals[code] = credential
        return credential

    def revoke(self, certificate: x509.Certificate) -> None:
        self.issuing.revoked[certificate.serial_number] = self.now

    # -- SealDirectory ----------------------------------------------------------------------
    def current_seal(self, department_code: str) -> SealCredential:
        return self.seals[department_code]

    def root_pem(self) -> bytes:
        return self.root.certificate.public_bytes(serialization.Encoding.PEM)


class TestRevocation:
    """RevocationSource: a fresh CRL or OCSP response on each call, signed in Vault."""

    __test__ = False

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        self.crl_calls = 0
        self.ocsp_calls = 0

    def _authority(self, issuer: x509.Certificate) -> Authority:
        for authority in (self.pki.root, self.pki.issuing):
            if authority.certificate == issuer:
                return authority
        raise LookupError(f"not one of our CAs: {issuer.subject.rfc4514_string()}")

    def crl_for(self, issuer: x509.Certificate) -> bytes:
        self.crl_calls += 1
        authority = self._authority(issuer)
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=1))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.signing_key.public_key()), critical=False
            )
        )
        for serial, when in authority.revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(authority.signing_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp_for(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        self.ocsp_calls += 1
        authority = self._authority(issuer)
        now = dt.datetime.now(dt.timezone.utc)
        revoked_at = authority.revoked.get(certificate.serial_number)
        status = ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=certificate,
                issuer=issuer,
                algorithm=hashes.SHA256(),
                cert_status=status,
                this_update=now - dt.timedelta(minutes=5),
                next_update=now + dt.timedelta(days=1),
                revocation_time=revoked_at,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
            .sign(authority.signing_key, hashes.SHA256())
        )
        return response.public_bytes(serialization.Encoding.DER)


class TestTsa:
    """An RFC 3161 TSA: TSTInfo in SignedData, signed attributes signed by its Vault key.

    ``timestamp_batch`` signs many tokens in one Vault round trip.
    """

    __test__ = False

    def __init__(self, keystore: KeyStore, key: KeyRef, certificate: x509.Certificate, chain: tuple[x509.Certificate, ...]) -> None:
        self.keystore = keystore
        self.key = key
        self.certificate = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
        self.chain = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]
        self.calls = 0
        self.serial = 0
        # constant parts, kept as parsed DER: asn1crypto re-serialises built structures slowly
        cert_hash = hashlib.sha256(self.certificate.dump()).digest()
        self._signing_certificate = cms.CMSAttribute.load(
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [tsp.SigningCertificateV2({"certs": [tsp.ESSCertIDv2({"cert_hash": cert_hash})]})],
                }
            ).dump()
        )
        self._certificates = cms.CertificateSet.load(cms.CertificateSet([self.certificate, *self.chain]).dump())
        self._sid = cms.SignerIdentifier.load(
            cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": self.certificate.issuer, "serial_number": self.certificate.serial_number}
                    )
                }
            ).dump()
        )

    def _signed_attrs(self, imprint: bytes, hash_name: str, nonce: int | None) -> tuple[bytes, cms.CMSAttributes]:
        self.serial += 1
        info: dict[str, object] = {
            "version": "v1",
            "policy": "1.3.6.1.4.1.99999.1.1",
            "message_imprint": tsp.MessageImprint(
                {"hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_name}), "hashed_message": imprint}
            ),
            "serial_number": self.serial * 1000 + uuid.uuid4().int % 1000,
            "gen_time": dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
            "accuracy": {"seconds": 1},
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.certificate.subject),
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst_info = tsp.TSTInfo(info).dump()
        attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]}),
                self._signing_certificate,
            ]
        )
        return tst_info, attrs

    def _token(self, tst_info: bytes, attrs: cms.CMSAttributes, signature: bytes) -> bytes:
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": self._sid,
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_info)},
                "certificates": self._certificates,
                "signer_infos": [signer_info],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()

    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None) -> bytes:
        self.calls += 1
        tst_info, attrs = self._signed_attrs(message_imprint, hash_name, nonce)
        signature = self.keystore.sign(self.key, hashlib.sha256(attrs.dump()).digest()).value
        return self._token(tst_info, attrs, signature)

    def timestamp_batch(self, message_imprints: list[bytes], hash_name: str) -> list[bytes]:
        self.calls += 1
        parts = [self._signed_attrs(imprint, hash_name, None) for imprint in message_imprints]
        digests = [hashlib.sha256(attrs.dump()).digest() for _, attrs in parts]
        signatures = self.keystore.sign_batch(self.key, digests)
        return [self._token(info, attrs, s.value) for (info, attrs), s in zip(parts, signatures, strict=True)]


class SingleTsa:
    """The same TSA without ``timestamp_batch`` (one call per token), as an HTTP TSA would be."""

    def __init__(self, tsa: TestTsa) -> None:
        self._tsa = tsa

    def timestamp(self, message_imprint: bytes, hash_name: str, *, nonce: int | None = None) -> bytes:
        return self._tsa.timestamp(message_imprint, hash_name, nonce=nonce)

"""Certificate profiles as data, and the pure builder that turns a profile into a to-be-signed cert.

A profile says what a kind of certificate may contain (RFC 5280; RFC 9336 for document signing).
:func:`build_certificate` validates a request against its profile before anything is signed, so
a bad request never reaches the key store.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.errors import ProfileViolation
from keys import PublicKey

__all__ = [
    "Profile",
    "Endpoints",
    "CertificateRequest",
    "ROOT",
    "ISSUING",
    "SEAL",
    "OCSP_RESPONDER",
    "TSA",
    "PROFILES",
    "build_certificate",
    "signature_hash",
    "DOCUMENT_SIGNING",
]

#: RFC 9336 id-kp-documentSigning.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
_KEY_USAGES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
    "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)


@dataclass(frozen=True)
class Endpoints:
    """Where relying parties fetch CA certificates, CRLs and OCSP answers (this service's URLs)."""

    base_url: str

    def ca_certificate(self, ca_name: str) -> str:
        return f"{self.base_url.rstrip('/')}/pki/ca/{ca_name}.crt"

    def crl(self, ca_name: str) -> str:
        return f"{self.base_url.rstrip('/')}/pki/crl/{ca_name}.crl"

    @property
    def ocsp(self) -> str:
        return f"{self.base_url.rstrip('/')}/pki/ocsp"

    @property
    def tsa(self) -> str:
        return f"{self.base_url.rstrip('/')}/pki/tsa"


@dataclass(frozen=True)
class Profile:
    """What one kind of certificate contains; instances are constants below."""

    name: str
    is_ca: bool
    key_usage: frozenset[str]
    max_validity: dt.timedelta
    path_length: int | None = None
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    eku_critical: bool = False
    revocation_pointers: bool = True  # CRL distribution point and AIA (OCSP + CA issuers)
    ocsp_pointer: bool = True
    ocsp_no_check: bool = False
    required_subject: tuple[x509.ObjectIdentifier, ...] = (NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
    allowed_curves: tuple[str, ...] = ("secp256r1", "secp384r1")
    min_rsa_bits: int = 3072

    def __post_init__(self) -> None:
        unknown = self.key_usage - set(_KEY_USAGES)
        if unknown:
            raise ValueError(f"unknown key usages {sorted(unknown)}")


ROOT = Profile(
    name="root", is_ca=True, key_usage=frozenset({"key_cert_sign", "crl_sign"}),
    max_validity=dt.timedelta(days=25 * 366), path_length=1, revocation_pointers=False,
)
ISSUING = Profile(
    name="issuing", is_ca=True, key_usage=frozenset({"key_cert_sign", "crl_sign"}),
    max_validity=dt.timedelta(days=12 * 366), path_length=0, ocsp_pointer=False,
)
SEAL = Profile(
    name="seal", is_ca=False, key_usage=frozenset({"digital_signature", "content_commitment"}),
    max_validity=dt.timedelta(days=3 * 366),
    # RFC 9336 document signing; e-mail protection too, because NSS (pdfsig, Firefox) and most PDF
    # readers check PDF signers against the S/MIME usage and reject an EKU without it.
    extended_key_usage=(DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION),
    required_subject=(NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATION_IDENTIFIER, NameOID.COMMON_NAME),
)
OCSP_RESPONDER = Profile(
    name="ocsp", is_ca=False, key_usage=frozenset({"digital_signature"}), max_validity=dt.timedelta(days=90),
    extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,), ocsp_no_check=True, revocation_pointers=False,
)
TSA = Profile(
    name="tsa", is_ca=False, key_usage=frozenset({"digital_signature"}), max_validity=dt.timedelta(days=6 * 366),
    extended_key_usage=(ExtendedKeyUsageOID.TIME_STAMPING,), eku_critical=True,
)
PROFILES = {p.name: p for p in (ROOT, ISSUING, SEAL, OCSP_RESPONDER, TSA)}

_PRINTABLE = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")


@dataclass(frozen=True)
class CertificateRequest:
    """What to certify: validated against a :class:`Profile` by :func:`build_certificate`."""

    profile: Profile
    subject: x509.Name
    public_key: CertificatePublicKeyTypes  # any key a CSR may carry: only EC and RSA pass the profile
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    issuer_name: str | None = None  # the issuing CaRecord's name (None: self-signed root)
    extra_extensions: tuple[x509.ExtensionType, ...] = field(default=())


def signature_hash(key: PublicKey) -> hashes.SHA256 | hashes.SHA384:
    """The hash that matches the signer's key strength (SHA-384 for P-384, SHA-256 otherwise)."""
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _check(request: CertificateRequest, issuer: x509.Certificate | None) -> None:
    profile = request.profile
    problems: list[str] = []
    key = request.public_key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in profile.allowed_curves:
            problems.append(f"curve {key.curve.name} is not allowed for {profile.name} certificates")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < profile.min_rsa_bits:
            problems.append(f"RSA keys need at least {profile.min_rsa_bits} bits")
    else:
        problems.append("only EC and RSA public keys can be certified")
    if request.not_before.tzinfo is None or request.not_after.tzinfo is None:
        problems.append("validity times must be timezone-aware")
    elif request.not_after <= request.not_before:
        problems.append("notAfter must be after notBefore")
    elif request.not_after - request.not_before > profile.max_validity:
        problems.append(f"validity longer than the {profile.name} profile allows ({profile.max_validity.days} days)")
    if issuer is not None and request.not_after.tzinfo is not None:
        if request.not_after > issuer.not_valid_after_utc:
            problems.append("validity would outlast the issuing CA certificate")
        if request.not_before < issuer.not_valid_before_utc:
            problems.append("validity would start before the issuing CA certificate")
    if not 0 < request.serial < 2**159:
        problems.append("serial must be a positive integer of at most 20 octets")
    present = {attr.oid for attr in request.subject}
    for oid in profile.required_subject:
        if oid not in present:
            problems.append(f"subject lacks {oid._name}")  # noqa: SLF001
    for attr in request.subject:
        value = attr.value if isinstance(attr.value, str) else ""
        if not value.strip():
            problems.append(f"subject {attr.oid._name} is empty")  # noqa: SLF001
        elif len(value) > 64 and attr.oid != NameOID.ORGANIZATION_IDENTIFIER:
            problems.append(f"subject {attr.oid._name} is longer than 64 characters")  # noqa: SLF001
        if attr.oid == NameOID.COUNTRY_NAME and not re.fullmatch(r"[A-Z]{2}", value):
            problems.append("country must be two upper-case letters")
    for ext in request.extra_extensions:
        if isinstance(ext, (x509.BasicConstraints, x509.KeyUsage, x509.ExtendedKeyUsage, x509.NameConstraints)):
            problems.append(f"extension {type(ext).__name__} is set by the profile, not the request")
    if problems:
        raise ProfileViolation("; ".join(problems), problems=problems)


def build_certificate(
    request: CertificateRequest,
    *,
    issuer: x509.Certificate | None,
    issuer_public_key: PublicKey,
    endpoints: Endpoints,
) -> x509.CertificateBuilder:
    """The unsigned certificate for ``request`` under its profile (raises :class:`ProfileViolation`)."""
    _check(request, issuer)
    profile = request.profile
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(issuer.subject if issuer is not None else request.subject)
        .public_key(request.public_key)
        .serial_number(request.serial)
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_after)
        .add_extension(x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length if profile.is_ca else None), critical=True)
        .add_extension(x509.KeyUsage(**{name: name in profile.key_usage for name in _KEY_USAGES}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
    if profile.extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(profile.extended_key_usage)), critical=profile.eku_critical)
    if profile.ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if profile.revocation_pointers and request.issuer_name is not None:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(endpoints.crl(request.issuer_name))],
                    relative_name=None, reasons=None, crl_issuer=None,
                )
            ]),
            critical=False,
        )
        access = [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                         x509.UniformResourceIdentifier(endpoints.ca_certificate(request.issuer_name)))]
        if profile.ocsp_pointer:
            access.insert(0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                                    x509.UniformResourceIdentifier(endpoints.ocsp)))
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    for ext in request.extra_extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder

"""Validation data for PAdES B-LT, gathered and checked once per batch.

For the seal certificate and the TSA certificate we fetch, from the :class:`RevocationSource`,
the CRL of every CA in their chains and an OCSP response for each of the two leaves; then we
validate both paths with pyHanko's certificate validator against our own root, offline, with
revocation data *required*. Only if that passes do we seal, and the same data goes into each
PDF's DSS, so a verifier needs nothing from the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from signing.errors import SealingUnavailable, SealMisconfigured, SealUnusable
from signing.material import RevocationSource, Seal
from signing.signer import AuthorityTimeStamper, VaultSigner

__all__ = ["Evidence", "gather_evidence"]

_MD = "sha256"


@dataclass(frozen=True)
class Evidence:
    """What goes into the DSS: certificates, CRLs and OCSP responses (loaded once per refresh)."""

    certs: tuple[asn1_x509.Certificate, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    ocsps: tuple[asn1_ocsp.OCSPResponse, ...]


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


async def _tsa_certificates(timestamper: AuthorityTimeStamper) -> list[x509.Certificate]:
    token = await timestamper.async_dummy_response(_MD)  # one token, cached by pyHanko for sizing too
    return [x509.load_der_x509_certificate(c.chosen.dump()) for c in token["content"]["certificates"]]


async def gather_evidence(
    credential: Seal,
    signer: VaultSigner,
    timestamper: AuthorityTimeStamper | None,
    revocation: RevocationSource,
) -> Evidence:
    known = [credential.certificate, *credential.chain]
    leaves = [credential.certificate]
    if timestamper is not None:
        tsa_certs = await _tsa_certificates(timestamper)
        known += [c for c in tsa_certs if c not in known]
        leaves += [c for c in tsa_certs if not _is_ca(c) and c != credential.certificate]
    crls, ocsps = _revocation_data(revocation, known, leaves)
    root = credential.chain[-1]
    context = ValidationContext(
        trust_roots=[_asn1(root)],
        other_certs=[_asn1(c) for c in known if c != root],
        crls=crls,
        ocsps=ocsps,
        allow_fetching=False,
        revocation_mode="require",
    )
    await _validate(credential, signer, timestamper, context)
    return Evidence(
        certs=tuple(_asn1(c) for c in known),
        crls=tuple(asn1_crl.CertificateList.load(c) for c in crls),
        ocsps=tuple(asn1_ocsp.OCSPResponse.load(o) for o in ocsps),
    )


async def _validate(
    credential: Seal,
    signer: VaultSigner,
    timestamper: AuthorityTimeStamper | None,
    context: ValidationContext,
) -> None:
    validator = CertificateValidator(signer.signing_cert, intermediate_certs=signer.cert_registry, validation_context=context)
    try:
        await validator.async_validate_usage({"non_repudiation"})
    except (PathBuildingError, PathValidationError) as exc:
        raise SealUnusable(f"the seal of {credential.department_code} does not validate: {exc}") from exc
    if timestamper is None:
        return
    try:
        async for _path in timestamper.validation_paths(context):
            pass
    except (PathBuildingError, PathValidationError) as exc:
        raise SealMisconfigured(f"the TSA certificate does not validate: {exc}") from exc


def _revocation_data(
    revocation: RevocationSource, known: list[x509.Certificate], leaves: list[x509.Certificate]
) -> tuple[list[bytes], list[bytes]]:
    issuers = {c.subject: c for c in known if _is_ca(c)}
    crls: list[bytes] = []
    ocsps: list[bytes] = []
    try:
        for ca in issuers.values():
            crls.append(revocation.crl_for(ca))
        for leaf in leaves:
            issuer = issuers.get(leaf.issuer)
            if issuer is None:
                raise SealMisconfigured(f"no CA certificate known for the issuer of {leaf.subject.rfc4514_string()}")
            ocsps.append(revocation.ocsp_for(leaf, issuer))
    except (SealMisconfigured, SealingUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the revocation source raises, sealing must wait
        raise SealingUnavailable(f"revocation data unavailable: {exc}") from exc
    return crls, ocsps

"""The hand-assembled CRL is byte for byte what cryptography's builder makes."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ca.crl import RevokedEntry, build_crl
from ca.service import CertificateAuthority


def test_assembled_crl_equals_the_reference_builder(authority: CertificateAuthority) -> None:
    issuing = authority.hierarchy().issuing
    now = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)
    entries = [
        RevokedEntry(1, now, None, None),
        RevokedEntry(0x7F, now, "unspecified", None),
        RevokedEntry(0x80, now, "keyCompromise", now - dt.timedelta(days=2)),
        RevokedEntry(2**158 + 12345, now, "privilegeWithdrawn", None),
        RevokedEntry(0xFFFF, dt.datetime(2051, 1, 1, tzinfo=dt.timezone.utc), "superseded", None),
    ]
    ours = build_crl(authority.keystore, issuing, entries, number=7, this_update=now, next_update=now + dt.timedelta(days=1))

    reference = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing.certificate.subject).last_update(now).next_update(now + dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(7), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing.certificate.public_key()), critical=False)  # type: ignore[arg-type]
    )
    for e in entries:
        item = x509.RevokedCertificateBuilder().serial_number(e.serial).revocation_date(e.revoked_at)
        if e.reason and e.reason != "unspecified":
            item = item.add_extension(x509.CRLReason(x509.ReasonFlags(e.reason)), critical=False)
        if e.invalidity_date:
            item = item.add_extension(x509.InvalidityDate(e.invalidity_date), critical=False)
        reference = reference.add_revoked_certificate(item.build())
    throwaway = ec.generate_private_key(ec.SECP256R1())  # only to let the reference builder finish; its signature is ignored
    expected = reference.sign(throwaway, hashes.SHA256())
    assert ours.tbs_certlist_bytes == expected.tbs_certlist_bytes
    assert ours.is_signature_valid(issuing.certificate.public_key())  # type: ignore[arg-type]

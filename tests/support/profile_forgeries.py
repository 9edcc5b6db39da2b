"""Forgeries with exactly the shape of our seal profile (one signature over the whole file), built from sealed PDFs.

Each keeps the file's length and /ByteRange and changes one thing: the covered bytes, the signature value,
the timestamp token. The CMS is re-encoded into the same /Contents slot (zero-padded, as signers do).
"""

from __future__ import annotations

import asyncio
import binascii
import datetime as dt
import hashlib
import re

from asn1crypto import cms, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from tests.support.hostile import _name

_RANGE = re.compile(rb"/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)")


def _slot(pdf: bytes) -> tuple[int, int]:
    found = _RANGE.search(pdf)
    assert found is not None
    return int(found.group(1)), int(found.group(2))


def signature_cms(pdf: bytes) -> cms.ContentInfo:
    a, b = _slot(pdf)
    return cms.ContentInfo.load(binascii.unhexlify(pdf[a + 1:b - 1]), strict=False)


def with_cms(pdf: bytes, info: cms.ContentInfo) -> bytes:
    a, b = _slot(pdf)
    hexed = info.dump().hex().encode()  # re-encodes what was changed (asn1crypto tracks mutation)
    assert len(hexed) <= b - a - 2, "the forged CMS does not fit the slot"
    return pdf[:a + 1] + hexed.ljust(b - a - 2, b"0") + pdf[b - 1:]


def _signer_info(info: cms.ContentInfo) -> cms.SignerInfo:
    return info["content"]["signer_infos"][0]


def wrong_digest(pdf: bytes) -> bytes:
    """One byte of the covered document info changed (the seal's messageDigest no longer matches)."""
    assert b"/Creator (ecert)" in pdf
    return pdf.replace(b"/Creator (ecert)", b"/Creator (ecerT)", 1)


def wrong_signature(pdf: bytes, other: bytes) -> bytes:
    """Our seal's genuine signature value and timestamp from another licence, over this licence's signed attributes."""
    info, donor = signature_cms(pdf), _signer_info(signature_cms(other))
    _signer_info(info)["signature"] = donor["signature"].native
    _signer_info(info)["unsigned_attrs"] = donor["unsigned_attrs"]
    return with_cms(pdf, info)


def timestamp_over_other_data(pdf: bytes, other: bytes) -> bytes:
    """Our TSA's genuine token, but the one of another licence's signature."""
    info = signature_cms(pdf)
    _signer_info(info)["unsigned_attrs"] = _signer_info(signature_cms(other))["unsigned_attrs"]
    return with_cms(pdf, info)


def _stranger_tsa() -> DummyTimeStamper:
    now = dt.datetime.now(dt.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's dummy TSA signs with RSA only
    name = _name("Example Province Government TSA")
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=365))
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                   .sign(key, hashes.SHA256()))
    der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return DummyTimeStamper(asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER)),
                            keys.PrivateKeyInfo.load(der_key))


def stranger_timestamp(pdf: bytes) -> bytes:
    """A correct timestamp over this signature, from a TSA that copies our names but is not ours."""
    info = signature_cms(pdf)
    imprint = hashlib.sha256(_signer_info(info)["signature"].native).digest()
    token = asyncio.run(_stranger_tsa().async_timestamp(imprint, "sha256"))
    _signer_info(info)["unsigned_attrs"] = cms.CMSAttributes([cms.CMSAttribute({"type": "signature_time_stamp_token", "values": [token]})])
    return with_cms(pdf, info)

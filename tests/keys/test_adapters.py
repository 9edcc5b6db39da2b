"""cryptography's builders sign with keys that stay in Vault."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo
from cryptography.x509.oid import NameOID

from keys import KeyExportForbidden, KeyType, RemoteECPrivateKey, RemoteRSAPrivateKey, TransitKeyStore, remote_private_key

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def _self_signed(key: RemoteECPrivateKey | RemoteRSAPrivateKey, algorithm: hashes.HashAlgorithm) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adapter test")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, algorithm)
    )


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [(KeyType.EC_P256, hashes.SHA256()), (KeyType.EC_P384, hashes.SHA384()), (KeyType.RSA_3072, hashes.SHA256())],
)
def test_certificate_builder_signs_with_a_vault_key(
    keystore: TransitKeyStore, uid: str, key_type: KeyType, algorithm: hashes.HashAlgorithm
) -> None:
    info = keystore.create(f"adapter-{uid}", key_type)
    key = remote_private_key(keystore, info.latest)
    certificate = _self_signed(key, algorithm)
    certificate.verify_directly_issued_by(certificate)
    assert certificate.public_key() == info.public_key()


def test_crl_and_ocsp_builders_sign_with_a_vault_key(keystore: TransitKeyStore, uid: str) -> None:
    from cryptography.x509 import ocsp

    info = keystore.create(f"adapter-{uid}", KeyType.EC_P256)
    key = RemoteECPrivateKey(keystore, info.latest)
    issuer = _self_signed(key, hashes.SHA256())
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=issuer, issuer=issuer, algorithm=hashes.SHA256(), cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW, next_update=NOW + dt.timedelta(hours=1), revocation_time=None, revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        .sign(key, hashes.SHA256())
    )
    public = issuer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_pss_signing_through_the_rsa_adapter(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"adapter-{uid}", KeyType.RSA_3072)
    key = RemoteRSAPrivateKey(keystore, info.latest)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    signature = key.sign(b"message", pss, hashes.SHA256())
    key.public_key().verify(signature, b"message", pss, hashes.SHA256())


def test_remote_keys_refuse_to_reveal_the_private_half(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"adapter-{uid}", KeyType.EC_P256)
    key = RemoteECPrivateKey(keystore, info.latest)
    with pytest.raises(KeyExportForbidden):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(KeyExportForbidden):
        key.private_numbers()
    with pytest.raises(KeyExportForbidden):
        key.exchange(ec.ECDH(), key.public_key())


def test_sha1_is_refused(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"adapter-{uid}", KeyType.EC_P256)
    with pytest.raises(ValueError, match="SHA-2"):
        RemoteECPrivateKey(keystore, info.latest).sign(b"x", ec.ECDSA(hashes.SHA1()))


def test_rsa_signing_without_digest_info_is_refused(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"adapter-{uid}", KeyType.RSA_3072)
    with pytest.raises(TypeError, match="DigestInfo"):
        RemoteRSAPrivateKey(keystore, info.latest).sign(b"\x00" * 32, padding.PKCS1v15(), NoDigestInfo())


def test_ec_signing_accepts_any_bytes_like_data(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"adapter-{uid}", KeyType.EC_P256)
    key = RemoteECPrivateKey(keystore, info.latest)
    signature = key.sign(memoryview(b"message"), ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(signature, b"message", ec.ECDSA(hashes.SHA256()))

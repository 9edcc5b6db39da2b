"""The transit key store against a real OpenBao."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from keys import KeyNotFound, KeyRef, KeyStore, KeyStoreError, KeyType, TransitKeyStore


def test_transit_store_is_a_key_store(keystore: TransitKeyStore) -> None:
    assert isinstance(keystore, KeyStore)


def test_created_keys_are_not_exportable(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"t-{uid}", KeyType.EC_P256)
    assert info.exportable is False
    assert info.deletion_allowed is False
    assert info.latest_version == 1


def test_create_is_idempotent_and_refuses_a_type_change(keystore: TransitKeyStore, uid: str) -> None:
    first = keystore.create(f"t-{uid}", KeyType.EC_P256)
    again = keystore.create(f"t-{uid}", KeyType.EC_P256)
    assert again.public_key().public_numbers() == first.public_key().public_numbers()
    with pytest.raises(KeyStoreError, match="exists with type"):
        keystore.create(f"t-{uid}", KeyType.RSA_3072)


def test_ecdsa_signature_verifies_with_cryptography(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"t-{uid}", KeyType.EC_P256)
    digest = hashlib.sha256(b"e-licence").digest()
    signature = keystore.sign(info.latest, digest)
    assert signature.key == KeyRef(f"t-{uid}", 1)
    public = info.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature.value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    with pytest.raises(InvalidSignature):
        public.verify(signature.value, hashlib.sha256(b"forged").digest(), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_raw_ecdsa_format_is_r_concatenated_with_s(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"t-{uid}", KeyType.EC_P384)
    digest = hashlib.sha384(b"jws").digest()
    raw = keystore.sign(info.latest, digest, hash_name="sha384", ec_format="raw").value
    assert len(raw) == 96
    der = keystore.sign(info.latest, digest, hash_name="sha384").value
    r, s = decode_dss_signature(der)
    assert r.bit_length() <= 384 and s.bit_length() <= 384


@pytest.mark.parametrize("padding_name", ["pkcs1v15", "pss"])
def test_rsa_signatures_verify(keystore: TransitKeyStore, uid: str, padding_name: str) -> None:
    info = keystore.create(f"rsa-{uid}", KeyType.RSA_3072)
    digest = hashlib.sha256(b"rsa").digest()
    value = keystore.sign(info.latest, digest, rsa_padding=padding_name).value  # type: ignore[arg-type]
    public = info.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    pad = (
        padding.PKCS1v15()
        if padding_name == "pkcs1v15"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    )
    public.verify(value, digest, pad, Prehashed(hashes.SHA256()))


def test_batch_signing_spans_several_requests(keystore: TransitKeyStore, uid: str) -> None:
    info = keystore.create(f"t-{uid}", KeyType.EC_P256)
    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(600)]
    signatures = keystore.sign_batch(info.latest, digests)
    assert len(signatures) == 600
    public = info.public_key()
    for digest, signature in zip(digests, signatures, strict=True):
        public.verify(signature.value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # type: ignore[union-attr]


def test_rotation_keeps_old_versions_verifying_and_signing(keystore: TransitKeyStore, uid: str) -> None:
    name = f"t-{uid}"
    v1 = keystore.create(name, KeyType.EC_P256)
    digest = hashlib.sha256(b"before").digest()
    old = keystore.sign(v1.latest, digest)
    v2 = keystore.rotate(name)
    assert v2.latest_version == 2
    assert keystore.public_key(KeyRef(name, 1)).public_numbers() == v1.public_key().public_numbers()  # type: ignore[union-attr]
    v1.public_key().verify(old.value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # type: ignore[union-attr]
    # A certificate pins a version: signing with version 1 after rotation still works.
    again = keystore.sign(KeyRef(name, 1), digest)
    assert again.key.version == 1
    v1.public_key().verify(again.value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # type: ignore[union-attr]
    newest = keystore.sign(v2.latest, digest)
    v2.public_key(2).verify(newest.value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # type: ignore[union-attr]


def test_missing_key_and_missing_version_are_clear(keystore: TransitKeyStore, uid: str) -> None:
    with pytest.raises(KeyNotFound):
        keystore.key_info(f"absent-{uid}")
    with pytest.raises(KeyNotFound):
        keystore.sign(KeyRef(f"absent-{uid}", 1), hashlib.sha256(b"x").digest())
    keystore.create(f"t-{uid}", KeyType.EC_P256)
    with pytest.raises(KeyNotFound, match="no version 7"):
        keystore.public_key(KeyRef(f"t-{uid}", 7))


@pytest.mark.parametrize("bad", ["", "A", "UPPER", "has space", "../escape", "x" * 70, "-lead"])
def test_key_names_are_validated_before_reaching_vault(keystore: TransitKeyStore, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid key name"):
        keystore.create(bad, KeyType.EC_P256)


def test_encryption_and_blind_index(keystore: TransitKeyStore, uid: str) -> None:
    keystore.create(f"pii-{uid}", KeyType.AES256_GCM)
    secrets = [b"510104199001011234", "张三".encode()]
    ciphertexts = keystore.encrypt(f"pii-{uid}", secrets)
    assert all(c.startswith("vault:v1:") for c in ciphertexts)
    assert b"510104" not in "".join(ciphertexts).encode()
    assert keystore.decrypt(f"pii-{uid}", ciphertexts) == secrets
    first, second = keystore.hmac(f"pii-{uid}", [secrets[0], secrets[0]])
    assert first == second and len(first) == 32
    assert keystore.hmac(f"pii-{uid}", [b"510104199001011235"])[0] != first

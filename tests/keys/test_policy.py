"""The service's Vault token can use keys but never export, delete or reconfigure them."""

from __future__ import annotations

import pytest

from keys import KeyOperationDenied, KeyType, TransitKeyStore, VaultConnection


def test_service_token_cannot_export(keystore: TransitKeyStore, uid: str) -> None:
    keystore.create(f"t-{uid}", KeyType.EC_P256)
    for kind in ("signing-key", "public-key", "encryption-key", "hmac-key"):
        with pytest.raises(KeyOperationDenied):
            keystore.connection.request("GET", f"transit/export/{kind}/t-{uid}")
    with pytest.raises(KeyOperationDenied):
        keystore.connection.request("GET", f"transit/backup/t-{uid}")


def test_service_token_cannot_delete_or_reconfigure(keystore: TransitKeyStore, uid: str) -> None:
    keystore.create(f"t-{uid}", KeyType.EC_P256)
    with pytest.raises(KeyOperationDenied):
        keystore.connection.request("POST", f"transit/keys/t-{uid}/config", {"deletion_allowed": True})
    with pytest.raises(KeyOperationDenied):
        keystore.connection.request("POST", f"transit/keys/t-{uid}/config", {"exportable": True})
    with pytest.raises(KeyOperationDenied):
        keystore.connection.request("DELETE", f"transit/keys/t-{uid}")
    assert keystore.key_info(f"t-{uid}").exportable is False


def test_service_token_cannot_create_an_exportable_key(keystore: TransitKeyStore, uid: str) -> None:
    with pytest.raises(KeyOperationDenied):
        keystore.connection.request("POST", f"transit/keys/x-{uid}", {"type": "ecdsa-p256", "exportable": True})
    with pytest.raises(KeyOperationDenied):
        keystore.connection.request(
            "POST", f"transit/keys/x-{uid}", {"type": "ecdsa-p256", "allow_plaintext_backup": True}
        )


def test_service_token_cannot_touch_vault_configuration(keystore: TransitKeyStore) -> None:
    for method, path in [
        ("GET", "sys/policies/acl/ecert"),
        ("POST", "sys/mounts/other"),
        ("GET", "auth/approle/role/ecert/role-id"),
        ("POST", "auth/token/create"),
    ]:
        with pytest.raises(KeyOperationDenied):
            keystore.connection.request(method, path, {"type": "kv"} if method == "POST" else None)


def test_every_key_in_transit_is_non_exportable(keystore: TransitKeyStore, root_vault: VaultConnection, uid: str) -> None:
    keystore.create(f"t-{uid}", KeyType.EC_P256)
    names = root_vault.request("LIST", "transit/keys")["data"]["keys"]
    assert f"t-{uid}" in names
    for name in names:
        data = root_vault.request("GET", f"transit/keys/{name}")["data"]
        assert data["exportable"] is False, name
        assert data["allow_plaintext_backup"] is False, name


def test_even_root_cannot_export_a_non_exportable_key(keystore: TransitKeyStore, root_vault: VaultConnection, uid: str) -> None:
    keystore.create(f"t-{uid}", KeyType.EC_P256)
    from keys import KeyStoreError

    with pytest.raises(KeyStoreError):
        root_vault.request("GET", f"transit/export/signing-key/t-{uid}")

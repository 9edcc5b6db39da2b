"""The embedded OpenBao: persistence, restarts, sealing and credentials."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from keys import (
    KeyType,
    TransitKeyStore,
    VaultAuthError,
    VaultConnection,
    VaultCredentials,
    VaultUnavailable,
)
from keys.openbao import ManagedOpenBao


def _store(server: ManagedOpenBao, credentials: VaultCredentials) -> TransitKeyStore:
    return TransitKeyStore(VaultConnection(server.addr, credentials, timeout=3))


def test_unseal_material_is_private_to_the_owner(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, _ = private_openbao
    mode = stat.S_IMODE(os.stat(server.init_file).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(server.directory).st_mode) == 0o700
    assert set(json.loads(server.init_file.read_text())) == {"unseal_key", "root_token"}


def test_the_service_credentials_are_not_the_root_token(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, credentials = private_openbao
    assert credentials.token is None and credentials.role_id and credentials.secret_id
    store = _store(server, credentials)
    store.create("probe", KeyType.EC_P256)
    lookup = store.connection.request("GET", "auth/token/lookup-self")["data"]
    assert "root" not in lookup["policies"]
    assert sorted(lookup["policies"]) == ["default", "ecert"]


def test_restart_keeps_every_key(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, credentials = private_openbao
    store = _store(server, credentials)
    info = store.create("survivor", KeyType.EC_P256)
    store.rotate("survivor")
    digest = hashlib.sha256(b"before restart").digest()
    before = store.sign(info.latest, digest)

    server.stop()
    assert not server.health().reachable
    new_credentials = server.start()

    after_store = _store(server, new_credentials)
    after = after_store.key_info("survivor")
    assert after.latest_version == 2
    assert after.public_key(1).public_numbers() == info.public_key().public_numbers()  # type: ignore[union-attr]
    public = after.public_key(1)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(before.value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    public.verify(after_store.sign(info.latest, digest).value, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_a_crashed_server_is_restarted_and_unsealed(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, credentials = private_openbao
    _store(server, credentials).create("crash", KeyType.EC_P256)
    server.kill()
    credentials = server.start()
    assert _store(server, credentials).key_info("crash").latest_version == 1


def test_a_second_manager_adopts_the_running_server(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, credentials = private_openbao
    _store(server, credentials).create("shared", KeyType.EC_P256)
    other = ManagedOpenBao(server.directory, port=server.port)
    other_credentials = other.start()
    assert _store(other, other_credentials).key_info("shared").latest_version == 1
    other.stop()  # did not start it, so it must not stop it
    assert server.health().ready


def test_sealed_vault_is_unavailable_then_recovers(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, credentials = private_openbao
    store = _store(server, credentials)
    info = store.create("sealable", KeyType.EC_P256)
    digest = hashlib.sha256(b"x").digest()
    server.seal()
    assert server.health().sealed
    with pytest.raises(VaultUnavailable, match="sealed"):
        store.sign(info.latest, digest)
    server.unseal()
    server._wait(lambda h: h.ready, 30, "after unsealing")  # noqa: SLF001
    assert store.sign(info.latest, digest).key.version == 1  # same store object: no restart needed


def test_stopped_vault_is_unavailable_then_recovers(private_openbao: tuple[ManagedOpenBao, VaultCredentials]) -> None:
    server, credentials = private_openbao
    store = _store(server, credentials)
    info = store.create("stoppable", KeyType.EC_P256)
    server.stop()
    with pytest.raises(VaultUnavailable, match="unreachable"):
        store.sign(info.latest, hashlib.sha256(b"x").digest())
    server.start()
    assert store.sign(info.latest, hashlib.sha256(b"x").digest()).key.version == 1


def test_wrong_token_is_a_clear_auth_error(openbao: ManagedOpenBao) -> None:
    store = TransitKeyStore(VaultConnection(openbao.addr, VaultCredentials(token="s.not-a-real-token-000000000000")))
    with pytest.raises(VaultAuthError, match="wrong or expired"):
        store.key_info("anything")


def test_wrong_approle_secret_is_a_clear_auth_error(openbao: ManagedOpenBao, vault_credentials: VaultCredentials) -> None:
    bad = VaultCredentials(role_id=vault_credentials.role_id, secret_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(VaultAuthError, match="AppRole"):
        TransitKeyStore(VaultConnection(openbao.addr, bad)).key_info("anything")


def test_expired_approle_token_is_renewed_by_logging_in_again(
    openbao: ManagedOpenBao, vault_credentials: VaultCredentials, root_vault: VaultConnection, uid: str
) -> None:
    store = TransitKeyStore(VaultConnection(openbao.addr, vault_credentials))
    store.create(f"t-{uid}", KeyType.EC_P256)
    token = store.connection._token  # noqa: SLF001
    root_vault.request("POST", "auth/token/revoke", {"token": token})
    info = store.create(f"t2-{uid}", KeyType.EC_P256)  # token revoked: logs in again and carries on
    assert info.latest_version == 1
    assert store.connection._token != token  # noqa: SLF001


def test_credentials_never_show_secrets() -> None:
    creds = VaultCredentials(role_id="role", secret_id="very-secret")
    assert "very-secret" not in repr(creds)
    assert "s.secret-token-value" not in repr(VaultCredentials(token="s.secret-token-value"))

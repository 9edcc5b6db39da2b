"""The Vault transit implementation of :class:`KeyStore` and :class:`DataProtector`."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any, Literal

from keys.errors import KeyNotFound, KeyStoreError
from keys.model import (
    HashName,
    KeyInfo,
    KeyRef,
    KeyType,
    KeyVersion,
    PublicKey,
    Signature,
    validate_key_name,
)
from keys.vault import VaultConnection

__all__ = ["TransitKeyStore", "BATCH_LIMIT"]

_VAULT_HASH = {"sha256": "sha2-256", "sha384": "sha2-384", "sha512": "sha2-512"}
BATCH_LIMIT = 256  # digests per transit request; keeps each request small and fast


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_signature(name: str, raw: str, ec_format: str) -> Signature:
    # "vault:v3:BASE64" -> version 3; jws marshaling is base64url without padding.
    _, version, body = raw.split(":", 2)
    if ec_format == "raw":
        value = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    else:
        value = base64.b64decode(body)
    return Signature(KeyRef(name, int(version.lstrip("v"))), value)


def _parse_time(value: Any) -> dt.datetime:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    text = str(value).rstrip("Z")
    text = text[:26] if "." in text else text  # Go prints nanoseconds
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


class TransitKeyStore:
    """Keys in a Vault/OpenBao transit engine, created non-exportable, used only via the API."""

    def __init__(self, connection: VaultConnection, *, mount: str = "transit") -> None:
        self._vault = connection
        self._mount = mount.strip("/")
        self._cache: dict[str, KeyInfo] = {}
        self._cache_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TransitKeyStore({self._vault!r}, mount={self._mount!r})"

    @property
    def connection(self) -> VaultConnection:
        return self._vault

    # -- KeyStore -----------------------------------------------------------------------
    def create(self, name: str, key_type: KeyType) -> KeyInfo:
        validate_key_name(name)
        try:
            existing = self.key_info(name)
        except KeyNotFound:
            pass
        else:
            if existing.key_type is not key_type:
                raise KeyStoreError(
                    f"key {name} exists with type {existing.key_type.value}, not {key_type.value}"
                )
            return existing
        # exportable and allow_plaintext_backup default to false; the service policy denies them.
        self._vault.request("POST", f"{self._mount}/keys/{name}", {"type": key_type.value})
        return self._refresh(name)

    def key_info(self, name: str) -> KeyInfo:
        cached = self._cache.get(name)
        return cached if cached is not None else self._refresh(name)

    def public_key(self, key: KeyRef) -> PublicKey:
        info = self.key_info(key.name)
        if key.version not in info.versions:
            info = self._refresh(key.name)  # rotated by another process since we cached it
        if key.version not in info.versions:
            raise KeyNotFound(f"key {key.name} has no version {key.version}")
        return info.public_key(key.version)

    def sign(
        self,
        key: KeyRef,
        digest: bytes,
        *,
        hash_name: HashName = "sha256",
        ec_format: Literal["der", "raw"] = "der",
        rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15",
    ) -> Signature:
        body = self._sign_body(key, ec_format, rsa_padding)
        body["input"] = _b64(digest)
        result = self._vault.request("POST", self._sign_path(key, hash_name), body)
        return _parse_signature(key.name, result["data"]["signature"], ec_format)

    def sign_batch(
        self,
        key: KeyRef,
        digests: Sequence[bytes],
        *,
        hash_name: HashName = "sha256",
        ec_format: Literal["der", "raw"] = "der",
        rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15",
    ) -> list[Signature]:
        signatures: list[Signature] = []
        for start in range(0, len(digests), BATCH_LIMIT):
            chunk = digests[start : start + BATCH_LIMIT]
            body = self._sign_body(key, ec_format, rsa_padding)
            body["batch_input"] = [{"input": _b64(d)} for d in chunk]
            result = self._vault.request("POST", self._sign_path(key, hash_name), body)
            for item in result["data"]["batch_results"]:
                if item.get("error"):
                    raise KeyStoreError(f"Vault failed to sign with {key}: {item['error']}")
                signatures.append(_parse_signature(key.name, item["signature"], ec_format))
        return signatures

    def rotate(self, name: str) -> KeyInfo:
        self._vault.request("POST", f"{self._mount}/keys/{validate_key_name(name)}/rotate")
        return self._refresh(name)

    # -- DataProtector ------------------------------------------------------------------
    def encrypt(self, key_name: str, plaintexts: Sequence[bytes], *, context: bytes = b"") -> list[str]:
        items = [{"plaintext": _b64(p), **({"context": _b64(context)} if context else {})} for p in plaintexts]
        result = self._vault.request("POST", f"{self._mount}/encrypt/{key_name}", {"batch_input": items})
        return [self._batch_value(item, "ciphertext", key_name) for item in result["data"]["batch_results"]]

    def decrypt(self, key_name: str, ciphertexts: Sequence[str], *, context: bytes = b"") -> list[bytes]:
        items = [{"ciphertext": c, **({"context": _b64(context)} if context else {})} for c in ciphertexts]
        result = self._vault.request("POST", f"{self._mount}/decrypt/{key_name}", {"batch_input": items})
        return [
            base64.b64decode(self._batch_value(item, "plaintext", key_name))
            for item in result["data"]["batch_results"]
        ]

    def hmac(self, key_name: str, messages: Sequence[bytes]) -> list[bytes]:
        items = [{"input": _b64(m)} for m in messages]
        result = self._vault.request(
            "POST", f"{self._mount}/hmac/{key_name}/sha2-256", {"batch_input": items}
        )
        return [
            base64.b64decode(self._batch_value(item, "hmac", key_name).split(":", 2)[2])
            for item in result["data"]["batch_results"]
        ]

    # -- helpers ------------------------------------------------------------------------
    def _sign_path(self, key: KeyRef, hash_name: str) -> str:
        return f"{self._mount}/sign/{validate_key_name(key.name)}/{_VAULT_HASH[hash_name]}"

    def _sign_body(self, key: KeyRef, ec_format: str, rsa_padding: str) -> dict[str, Any]:
        return {
            "prehashed": True,
            "key_version": key.version,
            "marshaling_algorithm": "jws" if ec_format == "raw" else "asn1",
            "signature_algorithm": rsa_padding,
            **({"salt_length": "hash"} if rsa_padding == "pss" else {}),
        }

    @staticmethod
    def _batch_value(item: dict[str, Any], field: str, key_name: str) -> str:
        if item.get("error"):
            raise KeyStoreError(f"Vault failed on key {key_name}: {item['error']}")
        return str(item[field])

    def _refresh(self, name: str) -> KeyInfo:
        data = self._vault.request("GET", f"{self._mount}/keys/{validate_key_name(name)}")["data"]
        try:
            key_type = KeyType(data["type"])
        except ValueError as exc:
            raise KeyStoreError(f"key {name} has unsupported type {data['type']}") from exc
        versions = {}
        for number, entry in data["keys"].items():
            if isinstance(entry, dict):
                versions[int(number)] = KeyVersion(
                    int(number), _parse_time(entry["creation_time"]), entry.get("public_key") or None
                )
            else:  # symmetric keys list only creation times
                versions[int(number)] = KeyVersion(int(number), _parse_time(entry), None)
        info = KeyInfo(
            name=name,
            key_type=key_type,
            latest_version=int(data["latest_version"]),
            exportable=bool(data.get("exportable")),
            deletion_allowed=bool(data.get("deletion_allowed")),
            versions=versions,
        )
        with self._cache_lock:
            self._cache[name] = info
        return info

"""Errors of the key custody layer."""

from __future__ import annotations

from ecert.errors import EcertError, NotFound, ServiceUnavailable

__all__ = [
    "KeyStoreError",
    "VaultUnavailable",
    "VaultAuthError",
    "KeyNotFound",
    "KeyOperationDenied",
    "KeyExportForbidden",
]


class KeyStoreError(EcertError):
    slug = "key-store-error"
    title = "Key store error"


class VaultUnavailable(ServiceUnavailable):
    """Vault is unreachable, sealed, or has no active node."""

    slug = "vault-unavailable"
    title = "The key service (Vault) is unavailable"


class VaultAuthError(ServiceUnavailable):
    """Vault rejected ecert's credentials (wrong or expired token, bad AppRole)."""

    slug = "vault-auth-failed"
    title = "The key service rejected ecert's credentials"


class KeyNotFound(NotFound):
    slug = "key-not-found"
    title = "No such key in Vault"


class KeyOperationDenied(KeyStoreError):
    """Vault's policy refuses the operation (export, delete, reconfigure...)."""

    slug = "key-operation-denied"
    title = "The key service refused the operation"


class KeyExportForbidden(KeyStoreError):
    """Raised by the remote-key adapters: private key material never leaves Vault."""

    slug = "key-export-forbidden"
    title = "Private keys cannot be exported"

"""Key custody: every private key of ecert lives in Vault's transit engine.

Nothing here imports another ecert package except the leaf :mod:`ecert.errors`.
"""

from keys.adapters import RemoteECPrivateKey, RemoteRSAPrivateKey, remote_private_key
from keys.errors import (
    KeyExportForbidden,
    KeyNotFound,
    KeyOperationDenied,
    KeyStoreError,
    VaultAuthError,
    VaultUnavailable,
)
from keys.model import DataProtector, KeyInfo, KeyRef, KeyStore, KeyType, KeyVersion, PublicKey, Signature
from keys.transit import TransitKeyStore
from keys.vault import VaultConnection, VaultCredentials, VaultHealth

__all__ = [
    "DataProtector",
    "KeyExportForbidden",
    "KeyInfo",
    "KeyNotFound",
    "KeyOperationDenied",
    "KeyRef",
    "KeyStore",
    "KeyStoreError",
    "KeyType",
    "KeyVersion",
    "PublicKey",
    "RemoteECPrivateKey",
    "RemoteRSAPrivateKey",
    "Signature",
    "TransitKeyStore",
    "VaultAuthError",
    "VaultConnection",
    "VaultCredentials",
    "VaultHealth",
    "VaultUnavailable",
    "remote_private_key",
]

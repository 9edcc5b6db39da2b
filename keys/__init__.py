"""Key custody: every private key of ecert lives in Vault's transit engine.

Nothing here imports another ecert package except the leaf :mod:`ecert.errors`. The Vault client
(:mod:`keys.transit`, :mod:`keys.vault`, which import ``hvac``) loads on first use, so code that
only needs the value types (offline verifiers, counter terminals) stays light.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from keys.transit import TransitKeyStore
    from keys.vault import VaultConnection, VaultCredentials, VaultHealth

_LAZY = {"TransitKeyStore": "keys.transit", "VaultConnection": "keys.vault", "VaultCredentials": "keys.vault",
         "VaultHealth": "keys.vault"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keys' has no attribute {name!r}")

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

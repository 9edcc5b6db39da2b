"""How licences get sealed: the department's seal key (ca) and the PDF sealer (signing)."""

from __future__ import annotations

from typing import Any

from ecert.runtime import Runtime
from keys import KeyRef, KeyType

__all__ = ["build", "TransitQrKeys"]


class TransitQrKeys:
    """Until ``ca`` provides department seals: one non-exportable P-256 transit key per department."""

    def __init__(self, runtime: Runtime) -> None:
        self.keystore = runtime.keystore

    def qr_key(self, department_code: str) -> KeyRef:
        return self.keystore.create(f"licence-qr-{department_code.lower()}", KeyType.EC_P256).latest


def build(runtime: Runtime) -> tuple[Any, Any]:
    return TransitQrKeys(runtime), None

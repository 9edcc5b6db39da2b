"""Tamper-evident audit trail and the transparency log of issued e-licences.

* :func:`record_event` appends to the hash-chained trail in the caller's transaction;
  :mod:`audit.checkpoints` signs its head, :mod:`audit.integrity` checks it.
* :func:`append_leaf` appends to the RFC 9162 Merkle tree in the caller's transaction;
  :func:`inclusion_proof` and :func:`consistency_proof` prove it; :mod:`audit.merkle` and
  :mod:`audit.treehead` check proofs and signed tree heads with no database; :mod:`audit.checker`
  is the independent auditor of a series of signed tree heads.
* :mod:`audit.stats` keeps daily counters (bumped with each event), :mod:`audit.dashboard` draws them;
  :mod:`audit.privacy` redacts secrets and ID numbers that callers let slip into details.

Names are imported lazily, so ``import audit.merkle`` (offline checkers) loads no database code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.tlog import append_leaf, consistency_proof, inclusion_proof
    from audit.trail import record_event
    from audit.treehead import LeafKind

__all__ = ["record_event", "append_leaf", "inclusion_proof", "consistency_proof", "LeafKind"]

_HOME = {
    "record_event": "audit.trail",
    "append_leaf": "audit.tlog",
    "inclusion_proof": "audit.tlog",
    "consistency_proof": "audit.tlog",
    "LeafKind": "audit.treehead",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")

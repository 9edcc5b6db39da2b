"""Signed checkpoints of the audit trail: "the trail had ``seq`` events ending in ``hash`` at ``at``".

A checkpoint is signed with the Vault transit key ``audit-checkpoint`` (ECDSA P-256) over
SHA-256 of :func:`checkpoint_message`. Checkpoints are taken *outside* the writers' transactions
(from the committed head), so appending never waits for Vault; :func:`maybe_checkpoint` takes one
when ``every_events`` events or ``every_seconds`` seconds have passed since the last one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit.models import AuditCheckpoint
from ecert.clock import Clock, as_utc
from keys import KeyRef, KeyStore, KeyType, PublicKey

__all__ = [
    "CHECKPOINT_KEY",
    "CheckpointPolicy",
    "Checkpoint",
    "checkpoint_message",
    "verify_checkpoint_signature",
    "take_checkpoint",
    "maybe_checkpoint",
    "latest_checkpoint",
]

log = logging.getLogger(__name__)
CHECKPOINT_KEY = "audit-checkpoint"


@dataclass(frozen=True)
class CheckpointPolicy:
    every_events: int = 1000
    every_seconds: float = 60.0


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: dt.datetime
    key: KeyRef
    signature: bytes

    @classmethod
    def of(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(row.seq, row.hash, as_utc(row.at), KeyRef(row.key_name, row.key_version), base64.b64decode(row.signature))

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "hash": self.hash, "at": self.at.isoformat(timespec="microseconds"),
            "key_name": self.key.name, "key_version": self.key.version,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            int(data["seq"]), str(data["hash"]), as_utc(dt.datetime.fromisoformat(data["at"])),
            KeyRef(str(data["key_name"]), int(data["key_version"])), base64.b64decode(data["signature"]),
        )


def checkpoint_message(seq: int, hash_hex: str, at: dt.datetime) -> bytes:
    """The exact bytes a checkpoint signature covers (SHA-256 of these is what Vault signs)."""
    return f"ecert-audit-checkpoint/v1\n{seq}\n{hash_hex}\n{as_utc(at).isoformat(timespec='microseconds')}\n".encode()


def verify_checkpoint_signature(checkpoint: Checkpoint, public_key: PublicKey) -> bool:
    digest = hashlib.sha256(checkpoint_message(checkpoint.seq, checkpoint.hash, checkpoint.at)).digest()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    try:
        public_key.verify(checkpoint.signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def latest_checkpoint(session: Session) -> Checkpoint | None:
    row = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq).desc()).limit(1)).first()
    return Checkpoint.of(row) if row is not None else None


def _committed_head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    return int(row[0]), str(row[1])


def take_checkpoint(engine: Engine, keystore: KeyStore, clock: Clock) -> Checkpoint | None:
    """Sign the committed head now; None if the trail is empty or that head is already checkpointed."""
    seq, head_hash = _committed_head(engine)
    if seq == 0:
        return None
    at = as_utc(clock.now())
    key = keystore.create(CHECKPOINT_KEY, KeyType.EC_P256).latest
    signature = keystore.sign(key, hashlib.sha256(checkpoint_message(seq, head_hash, at)).digest())
    checkpoint = Checkpoint(seq, head_hash, at, signature.key, signature.value)
    try:
        with Session(engine) as session:
            session.add(AuditCheckpoint(
                seq=seq, hash=head_hash, at=at, key_name=signature.key.name, key_version=signature.key.version,
                signature=base64.b64encode(signature.value).decode(),
            ))
            session.commit()
    except sa.exc.IntegrityError:
        return None  # another process checkpointed the same head first
    log.info("audit checkpoint", extra={"seq": seq})
    return checkpoint


def maybe_checkpoint(engine: Engine, keystore: KeyStore, clock: Clock, policy: CheckpointPolicy) -> Checkpoint | None:
    """Take a checkpoint if ``policy`` says one is due (new events, and enough of them or enough time)."""
    with Session(engine) as session:
        last = latest_checkpoint(session)
    seq, _ = _committed_head(engine)
    last_seq = last.seq if last else 0
    if seq <= last_seq:
        return None
    waited = (as_utc(clock.now()) - last.at).total_seconds() if last else float("inf")
    if seq - last_seq >= policy.every_events or waited >= policy.every_seconds:
        return take_checkpoint(engine, keystore, clock)
    return None

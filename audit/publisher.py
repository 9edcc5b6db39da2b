"""The background signer: audit checkpoints and transparency tree heads, on a schedule.

One daemon thread per process polls the committed heads (two tiny queries) every ``poll``
seconds and signs in Vault only when a policy says so. Several processes may run it: each
checkpoint or tree head is keyed by its size, so a duplicate is simply not stored.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from audit.checkpoints import CheckpointPolicy, maybe_checkpoint
from audit.tlog import maybe_sign_tree_head
from ecert.clock import Clock
from ecert.errors import EcertError
from keys import KeyStore

__all__ = ["PublishPolicy", "Publisher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishPolicy:
    checkpoint: CheckpointPolicy = CheckpointPolicy()
    sth_every_seconds: float = 10.0
    sth_every_leaves: int = 1000
    poll_seconds: float = 1.0


class Publisher:
    def __init__(self, engine: Engine, keystore: KeyStore, clock: Clock, policy: PublishPolicy = PublishPolicy()) -> None:
        self.engine, self.keystore, self.clock, self.policy = engine, keystore, clock, policy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """One round: a checkpoint and a tree head if due. Failures are logged, never raised."""
        try:
            maybe_checkpoint(self.engine, self.keystore, self.clock, self.policy.checkpoint)
            maybe_sign_tree_head(self.engine, self.keystore, self.clock, every_seconds=self.policy.sth_every_seconds,
                                 every_leaves=self.policy.sth_every_leaves)
        except EcertError as exc:  # Vault sealed or unreachable: try again next round
            log.warning("audit publisher round failed: %s", exc.detail)
        except Exception as exc:  # the database may be away: try again next round
            log.warning("audit publisher round failed: %s", type(exc).__name__)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="audit-publisher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.policy.poll_seconds)

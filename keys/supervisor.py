"""Keeps the embedded OpenBao of a serving process alive and unsealed.

``ecert serve`` owns its data directory's OpenBao (:class:`keys.openbao.ManagedOpenBao`) and runs one
:class:`OpenBaoSupervisor` thread beside the API: every ``interval`` seconds it restarts the server if
its process has died and unseals it if it answers sealed (a restart, or an operator's ``seal``), so the
service recovers without being restarted. A server that is alive but slow or hung is left alone:
readiness reports it, and killing a paused process would only lose the requests it holds. A repair
that fails is retried with exponential backoff up to ``max_backoff`` seconds.
"""

from __future__ import annotations

import logging
import threading

from keys.errors import VaultUnavailable
from keys.openbao import ManagedOpenBao
from keys.vault import VaultCredentials

__all__ = ["OpenBaoSupervisor"]

log = logging.getLogger(__name__)


class OpenBaoSupervisor:
    """Owner of one embedded OpenBao: starts it, watches it, restarts and unseals it, stops it."""

    def __init__(
        self, server: ManagedOpenBao, *, interval: float = 1.0, max_backoff: float = 30.0, start_timeout: float = 60.0
    ) -> None:
        self.server = server
        self.interval = interval
        self.max_backoff = max_backoff
        self.start_timeout = start_timeout
        self.restarts = 0
        self.unseals = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, claim_wait: float = 60.0) -> VaultCredentials:
        """Become the server's owner (waiting ``claim_wait`` s for a command that holds it), start it, watch it."""
        if not self.server.claim(wait=claim_wait):
            raise VaultUnavailable(
                f"another ecert process (pid {self.server.owner_pid()}) runs the embedded OpenBao of "
                f"{self.server.directory}; stop it first, or point ECERT_VAULT_ADDR at an external Vault"
            )
        try:
            credentials = self.server.start(self.start_timeout)
        except BaseException:
            self.server.stop()
            raise
        self._thread = threading.Thread(target=self._run, name="openbao-supervisor", daemon=True)
        self._thread.start()
        return credentials

    def check(self) -> str:
        """One round: ``"restarted"``, ``"unsealed"`` or ``"ok"``; raises when a repair fails."""
        server = self.server
        if not server.alive():
            log.warning("the embedded OpenBao (pid %s) has exited: starting it again", server.pid)
            server.launch()
            server.wait_ready(self.start_timeout)
            self.restarts += 1
            log.warning("the embedded OpenBao is back (pid %s) and unsealed", server.pid)
            return "restarted"
        health = server.health()
        if health.reachable and health.initialized and health.sealed:
            log.warning("the embedded OpenBao answers sealed: unsealing it")
            server.wait_ready(self.start_timeout)
            self.unseals += 1
            return "unsealed"
        return "ok"

    def _run(self) -> None:
        delay = self.interval
        while not self._stopping.wait(delay):
            try:
                self.check()
                delay = self.interval
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any failed repair
                delay = min(max(delay, self.interval) * 2, self.max_backoff)
                log.error("could not repair the embedded OpenBao (%s); next try in %.0f s", exc, delay)

    def stop(self) -> None:
        """Stop watching, then stop the server if this process started it, and give up ownership."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.start_timeout)
            self._thread = None
        self.server.stop()

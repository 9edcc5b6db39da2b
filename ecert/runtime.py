"""The running system: settings, database engine, key store and clock, wired once.

``api`` and the CLI both build a :class:`Runtime`; domain services are made from it. With no
external Vault configured, :func:`start_embedded_vault` runs the managed OpenBao and returns
settings that point at it, so every worker process uses one code path (external Vault).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ecert.clock import Clock, SystemClock
from ecert.db import make_engine, make_reader, migrate
from ecert.settings import Settings
from keys import TransitKeyStore, VaultConnection, VaultCredentials
from keys.openbao import ManagedOpenBao

__all__ = ["Runtime", "start_embedded_vault", "keystore_for"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_SERVICES_LOCK = threading.RLock()


def keystore_for(settings: Settings) -> TransitKeyStore:
    if settings.vault_addr is None:
        raise ValueError("keystore_for needs an external Vault address; start the embedded one first")
    credentials = VaultCredentials(
        token=settings.vault_token.get_secret_value() if settings.vault_token else None,
        role_id=settings.vault_role_id,
        secret_id=settings.vault_secret_id.get_secret_value() if settings.vault_secret_id else None,
    )
    connection = VaultConnection(settings.vault_addr, credentials, timeout=settings.vault_timeout)
    return TransitKeyStore(connection, mount=settings.vault_transit_mount)


def start_embedded_vault(settings: Settings) -> tuple[ManagedOpenBao, Settings]:
    """Start the managed OpenBao; return it and settings that point at it with AppRole creds."""
    server = ManagedOpenBao(
        settings.data_dir / "openbao", port=settings.embedded_vault_port, mount=settings.vault_transit_mount
    )
    credentials = server.start()
    log.info("embedded OpenBao ready", extra={"vault_addr": server.addr})
    updated = settings.model_copy(
        update={
            "vault_addr": server.addr,
            "vault_role_id": credentials.role_id,
            "vault_secret_id": _secret(credentials.secret_id),
        }
    )
    return server, updated


def _secret(value: str | None) -> Any:
    from pydantic import SecretStr

    return SecretStr(value) if value else None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    keystore: TransitKeyStore
    clock: Clock = field(default_factory=SystemClock)
    services: dict[str, Any] = field(default_factory=dict)
    _reader: Engine | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None, engine: Engine | None = None) -> Runtime:
        engine = engine or make_engine(settings.resolved_database_url)
        if settings.auto_migrate:
            migrate(engine)
        return cls(settings=settings, engine=engine, keystore=keystore_for(settings), clock=clock or SystemClock())

    @property
    def reader(self) -> Engine:
        """The engine for single-statement reads on hot public paths (:func:`ecert.db.make_reader`)."""
        with _SERVICES_LOCK:
            if self._reader is None:
                self._reader = make_reader(self.engine)
            return self._reader

    def service(self, name: str, factory: Callable[[Runtime], T]) -> T:
        """A domain service built once per runtime (routes and commands share it)."""
        with _SERVICES_LOCK:
            if name not in self.services:
                self.services[name] = factory(self)
            return self.services[name]

    def database_ready(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        if self._reader is not None and self._reader is not self.engine:
            self._reader.dispose()
        self.engine.dispose()

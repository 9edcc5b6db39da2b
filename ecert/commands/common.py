"""What every command module shares: JSON-or-text output and a runtime with Vault for one command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ecert.settings import Settings

__all__ = ["emit", "command_engine", "command_runtime", "command_container"]


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else the human-readable ``text``."""
    print(json.dumps(data, ensure_ascii=False, default=str) if getattr(args, "json", False) else text)


def command_engine(settings: Settings) -> Any:
    """A database engine for one command (migrated first unless ``auto_migrate`` is off); no Vault."""
    from ecert.db import make_engine, migrate

    engine = make_engine(settings.resolved_database_url)
    if settings.auto_migrate:
        migrate(engine)
    return engine


@contextmanager
def command_runtime(settings: Settings) -> Iterator[Any]:
    """A Runtime for one command. With no Vault configured it attaches to the embedded OpenBao of a running
    ``ecert serve`` (waiting for it, never stopping it), or, with no service running, starts one and stops it."""
    from ecert.runtime import Runtime, start_embedded_vault

    server = None
    if settings.embedded_vault:
        server, settings = start_embedded_vault(settings)
    runtime = Runtime.build(settings)
    try:
        yield runtime
    finally:
        runtime.close()
        if server is not None:
            server.stop()


@contextmanager
def command_container(settings: Settings) -> Iterator[Any]:
    """The services (:class:`ecert.container.Container`) for one command, over :func:`command_runtime`; nothing is
    started in the background."""
    from ecert.container import Container

    with command_runtime(settings) as runtime:
        yield Container.build(runtime)

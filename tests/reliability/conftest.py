"""Real ``ecert serve`` processes for fault tests (embedded OpenBao, SQLite, demo seed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bench.harness import POSTGRES_URL, Server, database, start_server

__all__ = ["bao_process", "kill_tree", "audit_verify", "token_for", "postgres_workers"]


def bao_process(server: Server) -> psutil.Process:
    return next(p for p in psutil.Process(server.process.pid).children(recursive=True) if "bao" in p.name())


def kill_tree(server: Server) -> None:
    """SIGKILL the server and every process under it at once (no graceful anything)."""
    root = psutil.Process(server.process.pid)
    procs = [root, *root.children(recursive=True)]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
    server.process.wait()


def audit_verify(server: Server, database_url: str) -> dict[str, Any]:
    """``ecert audit verify --json`` on the server's data once it has stopped (it starts the embedded OpenBao)."""
    import json

    from keys.openbao import free_port

    server.stop()
    env = {**os.environ, "ECERT_DATA_DIR": str(server.data_dir), "ECERT_DATABASE_URL": database_url,
           "ECERT_LOG_LEVEL": "WARNING", "ECERT_EMBEDDED_VAULT_PORT": str(free_port())}
    for name in ("VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "ecert.cli", "audit", "verify", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def token_for(server: Server) -> str:
    response = httpx.post(f"{server.base}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(server.demo["client_id"], server.demo["client_secret"]), timeout=60)
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """A factory: start (or restart on the same data dir) ``ecert serve``; all stopped at the end."""
    started: list[Server] = []
    database_url = f"sqlite:///{tmp_path}/ecert.db"

    def start(**env: str) -> Server:
        server = start_server(tmp_path / "data", database_url, workers=1, extra_env=env)
        started.append(server)
        return server

    start.database_url = database_url  # type: ignore[attr-defined]
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def postgres_workers(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``ecert serve`` with ``workers`` API workers on a fresh PostgreSQL schema; (server, database URL)."""
    url = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not available (set ECERT_TEST_POSTGRES_URL)")
    started: list[Server] = []
    with database("postgresql", tmp_path, url or POSTGRES_URL) as database_url:

        def start(workers: int = 2, **env: str) -> tuple[Server, str]:
            server = start_server(tmp_path / "data", database_url, workers=workers, extra_env=env)
            started.append(server)
            return server, database_url

        try:
            yield start
        finally:
            for server in started:
                server.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (mounted as root; the test is skipped where it cannot be), for a blob store that fills up."""
    mount = tmp_path / "blobs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)

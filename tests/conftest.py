"""Shared fixtures: a real OpenBao server and real databases (SQLite and PostgreSQL).

Nothing here is mocked. One OpenBao (raft storage, initialised and configured by ecert's own
manager) serves the whole session; each database backend gets a fresh, migrated schema.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from api.app import create_app
from ecert.container import Container
from ecert.db import make_engine, migrate
from ecert.runtime import Runtime
from ecert.settings import Settings
from keys import TransitKeyStore, VaultConnection, VaultCredentials
from keys.openbao import ManagedOpenBao, free_port
from tests.support.s3server import MotoS3
from tests.support.services import generous

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def start_openbao(directory: Path) -> tuple[ManagedOpenBao, VaultCredentials]:
    port = free_port()
    while port + 1 > 65535:  # cluster port is port + 1
        port = free_port()
    server = ManagedOpenBao(directory, port=port)
    return server, server.start()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedOpenBao]:
    server, credentials = start_openbao(tmp_path_factory.mktemp("openbao"))
    server.service_credentials = credentials  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vault_credentials(openbao: ManagedOpenBao) -> VaultCredentials:
    return openbao.service_credentials  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session")
def keystore(openbao: ManagedOpenBao, vault_credentials: VaultCredentials) -> TransitKeyStore:
    return TransitKeyStore(VaultConnection(openbao.addr, vault_credentials))


@pytest.fixture(scope="session")
def root_vault(openbao: ManagedOpenBao) -> VaultConnection:
    """Root access, only for tests that inspect or break Vault; the service never has it."""
    return VaultConnection(openbao.addr, VaultCredentials(token=openbao.root_token()))


def _postgres_engine() -> Iterator[Engine]:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must test PostgreSQL: ECERT_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not available (set ECERT_TEST_POSTGRES_URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of PostgreSQL-only features (``postgres_only``) run on PostgreSQL alone: their SQLite variant is
    deselected rather than skipped, so a skip in the report always means something did not run."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        sqlite_variant = params.get("engine") == "sqlite"
        (dropped if sqlite_variant and item.get_closest_marker("postgres_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database, once per backend; tests use unique names instead of cleaning up."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db')}/ecert.db")
        migrate(engine)
        yield engine
        engine.dispose()
    else:
        for engine in _postgres_engine():
            migrate(engine)
            yield engine


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, openbao: ManagedOpenBao, vault_credentials: VaultCredentials) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        vault_addr=openbao.addr,
        vault_role_id=vault_credentials.role_id,
        vault_secret_id=SecretStr(vault_credentials.secret_id or ""),
        demo=False,
        auto_migrate=False,
        public_url="http://ecert.test",
    )


@pytest.fixture(scope="session")
def runtime(settings: Settings, engine: Engine, keystore: TransitKeyStore) -> Runtime:
    return Runtime(settings=settings.model_copy(), engine=engine, keystore=keystore)


@pytest.fixture(scope="session")
def container(runtime: Runtime) -> Container:
    """The services over the session's runtime, shared by the ``client`` and ``live_url`` apps."""
    return generous(Container.build(runtime))


@pytest.fixture(scope="session")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def swap() -> Iterator[Callable[..., Container]]:
    """``swap(app, **services)``: the app answers with some services replaced, for this test only."""
    kept: list[tuple[Any, Container]] = []

    def use(app: Any, **changes: Any) -> Container:
        kept.append((app, app.state.container))
        app.state.container = app.state.container.replace(**changes)
        return app.state.container  # type: ignore[no-any-return]

    yield use
    for app, container in reversed(kept):
        app.state.container = container


@pytest.fixture
def uid() -> str:
    """A short unique suffix for names, so tests never collide on a shared database."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def private_openbao(tmp_path: Path) -> Iterator[tuple[ManagedOpenBao, VaultCredentials]]:
    """An OpenBao of the test's own, for tests that seal, stop or restart it."""
    server, credentials = start_openbao(tmp_path / "openbao")
    yield server, credentials
    server.stop()
    server.kill()


@pytest.fixture(scope="session")
def live_app(container: Container) -> Any:
    """The app behind ``live_url`` (for :func:`swap`)."""
    return create_app(container)


@pytest.fixture(scope="session")
def live_url(live_app: Any) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, for tools that speak HTTP (openssl ocsp, OAuth clients, Chromium)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(live_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """One S3-compatible server (moto's, over HTTP on loopback) for the session; tests make their own buckets."""
    server = MotoS3(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[MotoS3]:
    """An S3 server of the test's own, for tests that stop or restart it."""
    server = MotoS3(tmp_path / "s3").start()
    yield server
    server.stop()

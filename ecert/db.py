"""Database engines and schema migrations (SQLite by default, PostgreSQL for scale).

Tables are SQLModel classes in the domain packages; each package keeps its own Alembic
branch in ``<package>/migrations/versions`` so packages evolve their schemas independently.
``migrate`` applies every branch (``alembic upgrade heads``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import stat
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

__all__ = ["make_engine", "make_reader", "make_probe", "read_retrying", "DriverReads", "claim_apart", "migrate", "session_scope",
           "alembic_config", "MODEL_PACKAGES", "load_models", "private_database_file"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# PostgreSQL engines made here, with what they connect with (a reader shares it): search_path, timeouts
_MADE: weakref.WeakKeyDictionary[Engine, tuple[str, dict[str, Any]]] = weakref.WeakKeyDictionary()

# Packages whose ``models`` module defines tables and whose ``migrations/versions`` holds their branch.
MODEL_PACKAGES = ("ecert", "audit", "ca", "certificates", "identity", "verify")


def load_models() -> sa.MetaData:
    """Import every package's models so ``SQLModel.metadata`` knows all tables."""
    for package in MODEL_PACKAGES:
        try:
            importlib.import_module(f"{package}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.models":
                raise
    return SQLModel.metadata


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: WAL and foreign keys on SQLite, a pool on PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            private_database_file(Path(path))
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True, **kwargs
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True, "pool_timeout": 5}
    options.update(kwargs)
    engine = sa.create_engine(url, **options)
    _MADE[engine] = (url, kwargs.get("connect_args", {}))
    return engine


def private_database_file(path: Path) -> None:
    """Make ``path`` (a SQLite database) readable by its owner only: the file 0600, created so before SQLite opens
    it (its -wal and -shm files take the database's mode), in a 0700 directory. Existing files and directories are
    tightened only if they are ours, and a shared (sticky) directory such as /tmp never."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    info = directory.stat()
    if info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(directory, 0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists() and name.stat().st_uid == os.getuid() and stat.S_IMODE(name.stat().st_mode) & 0o077:
            os.chmod(name, 0o600)


def make_reader(engine: Engine) -> Engine:
    """An engine for single-statement reads on hot public paths (link verification).

    On PostgreSQL it has its own small pool in autocommit, without pre-ping and without a reset on return, so a
    lookup costs one round trip instead of four (ping, BEGIN, SELECT, ROLLBACK); callers wrap reads in
    :func:`read_retrying` so a connection that died since its last use costs a retry, not an error.
    On SQLite reads are local, and an engine not made by :func:`make_engine` is unknown: the engine itself.
    """
    made = _MADE.get(engine)
    if engine.dialect.name == "sqlite" or made is None:
        return engine
    url, connect_args = made
    return sa.create_engine(url, connect_args=connect_args, pool_size=8, max_overflow=8, pool_timeout=5, pool_pre_ping=False,
                            isolation_level="AUTOCOMMIT", pool_reset_on_return=None)


def make_probe(engine: Engine) -> Engine:
    """An engine for health checks: a fresh connection each time (no pool to wait for), with a 2 s connect timeout
    on PostgreSQL, so readiness answers within seconds even while every pooled connection is busy."""
    if engine.dialect.name == "sqlite":
        return sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    made = _MADE.get(engine)
    if made is None:  # an engine not made by make_engine: its connection settings are unknown
        return engine
    url, connect_args = made
    return sa.create_engine(url, connect_args={**connect_args, "connect_timeout": 2}, poolclass=sa.pool.NullPool)


def read_retrying(read: Callable[[], T]) -> T:
    """Run a read-only call; once more if its pooled connection was found dead (the pool has replaced it)."""
    try:
        return read()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return read()


class DriverReads:
    """Hand-written SELECTs run on the driver itself, for the few public reads so frequent that SQLAlchemy's
    execution and result machinery costs more than the query (first-sight link verification).

    SQL is written with ``%(name)s`` placeholders; on PostgreSQL each statement is prepared on its connection, on
    SQLite the placeholders become ``:name``. Rows are plain tuples, converted only by the column types given
    (as SQLAlchemy would, e.g. SQLite's text timestamps and JSON). A driver error is raised as SQLAlchemy's
    :class:`~sqlalchemy.exc.DBAPIError`, with ``connection_invalidated`` when the connection died (the pool
    then drops it), so :func:`read_retrying` and the API's outage handling treat it like any other read.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def statement(self, sql: str) -> str:
        """``sql`` in the driver's placeholder style."""
        return sql if self.postgres else re.sub(r"%\((\w+)\)s", r":\1", sql)

    def any_of(self, column: str, name: str) -> str:
        """SQL true when ``column`` equals one of the strings in list parameter ``name`` (one statement shape for any
        number of values, so it is prepared once): ``= ANY`` on PostgreSQL, a JSON array on SQLite (:meth:`values`)."""
        return f"{column} = ANY(%({name})s)" if self.postgres else f"{column} IN (SELECT value FROM json_each(%({name})s))"

    def values(self, items: list[str]) -> Any:
        """A list parameter for :meth:`any_of`."""
        return items if self.postgres else json.dumps(items)

    def converters(self, types: list[sa.types.TypeEngine[Any] | None]) -> list[Callable[[Any], Any] | None]:
        """One result converter per column type (None where the driver's value is already right, or no type)."""
        dialect = self.engine.dialect
        return [t.dialect_impl(dialect).result_processor(dialect, None) if t is not None else None for t in types]

    def rows(self, statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raw = self.engine.raw_connection()
        cursor: Any = None  # the driver's own cursor: psycopg's execute() takes prepare=
        try:
            cursor = raw.cursor()
            if self.postgres:
                cursor.execute(statement, params, prepare=True)
            else:
                cursor.execute(statement, params)
            return cursor.fetchall()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            gone = self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
            if gone:
                raw.invalidate(exc)
            raise sa.exc.DBAPIError.instance(statement, params, exc, self.engine.dialect.loaded_dbapi.Error,
                                             connection_invalidated=gone) from exc
        finally:
            if cursor is not None:
                cursor.close()
            raw.close()


def claim_apart(session: Session, claim: Callable[[Session], T]) -> T:
    """Run ``claim`` (a short write to a shared counter row) so that its row is not held locked until the caller
    commits: on PostgreSQL in a transaction of its own, committed at once (kept even if the caller rolls back);
    on SQLite, which has one writer anyway, in the caller's transaction."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return claim(session)
    engine = bind if isinstance(bind, Engine) else bind.engine
    with Session(engine) as own:
        result = claim(own)
        own.commit()
    return result


def alembic_config(engine: Engine | None = None) -> Config:
    here = Path(__file__).resolve().parent
    config = Config()
    config.set_main_option("script_location", str(here / "migrations"))
    locations = []
    for package in MODEL_PACKAGES:
        module = importlib.import_module(package)
        versions = Path(module.__file__ or "").parent / "migrations" / "versions"
        if versions.is_dir():
            locations.append(str(versions))
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema up to date: every package's branch to its head."""
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

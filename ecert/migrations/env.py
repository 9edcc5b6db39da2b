"""Alembic environment: runs on the connection ecert hands over (see ``ecert.db.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ecert.db import load_models, make_engine

config = context.config
target_metadata = load_models()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run_on(conn)


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()


run()

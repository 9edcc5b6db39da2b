"""Single use under concurrency: a one-time secret is spent by a conditional write, and whoever gets the row back won.

``SELECT ... FOR UPDATE`` does nothing on SQLite, so a read-check-write lets parallel requests all see a secret
unused and all spend it. :func:`claim` instead runs ``UPDATE ... SET <spent> WHERE <key> AND <still unspent>
RETURNING <key>``: on PostgreSQL a concurrent claimant waits for the row lock and then finds the condition false; on
SQLite writers are serialised and the statement reads the latest commit. Exactly one claimant gets a row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

__all__ = ["claim"]


def claim(session: Session, model: type[SQLModel], *conditions: Any, values: dict[str, Any]) -> bool:
    """Set ``values`` on the row of ``model`` matching every condition; True if this call changed it.

    Pending changes are flushed first. The ORM copy of the row (if loaded) is expired for the columns set, so
    it reads the stored values next time.
    """
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    statement = sa.update(table).where(*conditions).values(**values).returning(*table.primary_key.columns)
    session.flush()
    won = session.execute(statement).first() is not None
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj, list(values))
    return won

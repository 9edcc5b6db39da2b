"""Instants of the legal record: stored as UTC, accepted with any offset, shown in the deployment's time zone.

* :class:`UtcDateTime` is the column type of every licence time. SQLite keeps no offset (SQLAlchemy writes the
  wall-clock digits and drops ``tzinfo``), so values are converted to UTC before they are written and read back
  as aware UTC; PostgreSQL's ``timestamptz`` keeps the instant and is read back as UTC too. A naive value is a
  bug (its instant is unknown) and is refused.
* :func:`checked_instant` is the input rule: aware, and between :data:`EARLIEST` and :data:`LATEST`, else
  :class:`~ecert.errors.InvalidInput` with a JSON pointer (never a 500 from date arithmetic later).

People read these instants in the deployment's zone through :mod:`ecert.localtime`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

import sqlalchemy as sa

from ecert.errors import InvalidInput

__all__ = ["UtcDateTime", "EARLIEST", "LATEST", "checked_instant"]

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that writes UTC and reads aware UTC on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a naive datetime ({value.isoformat()}) has no known instant: give it a time zone")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def checked_instant(value: Any, pointer: str, *, what: str = "the time") -> dt.datetime:
    """``value`` as aware UTC if it is an aware datetime within [EARLIEST, LATEST); else InvalidInput at ``pointer``."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        _refuse(pointer, f"{what} needs a time zone (an offset such as +08:00 or Z)")
    try:
        instant = value.astimezone(dt.timezone.utc)
    except OverflowError:  # year 1 east of Greenwich, year 9999 west of it
        instant = None
    if instant is None or not EARLIEST <= instant < LATEST:
        _refuse(pointer, f"{what} must be between {EARLIEST.year} and {LATEST.year}")
    assert instant is not None
    return instant


def _refuse(pointer: str, detail: str) -> NoReturn:
    raise InvalidInput(f"{pointer.removeprefix('#/')}: {detail}", errors=[{"pointer": pointer, "detail": detail}])

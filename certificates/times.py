"""Instants of the legal record: stored as UTC, accepted with any offset, shown in the deployment's time zone.

* :class:`UtcDateTime` is the column type of every licence time. SQLite keeps no offset (SQLAlchemy writes the
  wall-clock digits and drops ``tzinfo``), so values are converted to UTC before they are written and read back
  as aware UTC; PostgreSQL's ``timestamptz`` keeps the instant and is read back as UTC too. A naive value is a
  bug (its instant is unknown) and is refused.
* :func:`checked_instant` is the input rule: aware, and between :data:`EARLIEST` and :data:`LATEST`, else
  :class:`~ecert.errors.InvalidInput` with a JSON pointer (never a 500 from date arithmetic later).
* :class:`LocalTime` renders instants for people in one zone (``ECERT_TIME_ZONE``, default Asia/Shanghai),
  always labelled with the offset, the same way on the portal, the counter, the verification page and the PDF.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from ecert.errors import InvalidInput

__all__ = [
    "UtcDateTime", "EARLIEST", "LATEST", "checked_instant", "DEFAULT_ZONE", "LocalTime", "zone_named",
    "use_zone", "local_time",
]

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_ZONE = "Asia/Shanghai"


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


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from exc


@dataclass(frozen=True)
class LocalTime:
    """Instants as people read them in one time zone, each labelled with its UTC offset."""

    zone: ZoneInfo

    @property
    def name(self) -> str:
        return self.zone.key

    def local(self, moment: dt.datetime) -> dt.datetime:
        if moment.tzinfo is None:
            raise ValueError("a naive datetime cannot be shown: its instant is unknown")
        return moment.astimezone(self.zone)

    def offset(self, moment: dt.datetime) -> str:
        """``UTC+08:00`` (the offset in force at that instant)."""
        delta = self.local(moment).utcoffset() or dt.timedelta(0)
        sign = "-" if delta < dt.timedelta(0) else "+"
        minutes = abs(int(delta.total_seconds())) // 60
        return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"

    def minute(self, moment: dt.datetime) -> str:
        """``2026-12-05 00:46 (UTC+08:00)``."""
        return f"{self.local(moment):%Y-%m-%d %H:%M} ({self.offset(moment)})"

    def second(self, moment: dt.datetime) -> str:
        """``2026-12-05 00:46:07 (UTC+08:00)``."""
        return f"{self.local(moment):%Y-%m-%d %H:%M:%S} ({self.offset(moment)})"

    def day(self, moment: dt.datetime) -> str:
        """``2026-12-05``: the calendar day in the zone (a validity date)."""
        return f"{self.local(moment):%Y-%m-%d}"


_current = LocalTime(ZoneInfo(DEFAULT_ZONE))


def use_zone(name: str) -> LocalTime:
    """Set the deployment's zone (from ``ECERT_TIME_ZONE``, once at start-up); return its :class:`LocalTime`."""
    global _current
    _current = LocalTime(zone_named(name))
    return _current


def local_time() -> LocalTime:
    """The deployment's :class:`LocalTime` (Asia/Shanghai unless :func:`use_zone` set another)."""
    return _current

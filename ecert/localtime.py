"""Times as people read them: one IANA zone for the deployment (``ECERT_TIME_ZONE``, default Asia/Shanghai),
every time labelled with its UTC offset, rendered the same way on the portal, the counter, the verification page
and the PDF. Stored and exchanged times stay UTC instants (:mod:`certificates.times`, ISO 8601 with an offset).

A leaf module like :mod:`ecert.clock`: importable from every package. :func:`ecert.settings.load_settings` sets
the zone once per process (:func:`use_zone`); until then it is the default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ecert.clock import as_utc

__all__ = ["DEFAULT_ZONE", "LocalTime", "zone_named", "use_zone", "local_time"]

DEFAULT_ZONE = "Asia/Shanghai"


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
        """``moment`` in the zone (a naive value is UTC: how tables without ``certificates.times.UtcDateTime`` read on SQLite)."""
        return as_utc(moment).astimezone(self.zone)

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

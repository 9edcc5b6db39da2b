"""Statistics for departments: pre-aggregated daily counts, kept in the writers' own transactions.

Every audit event bumps one counter row ``(department, day, metric=action, dimension)`` in the
same transaction (``record_event`` runs :data:`UPSERT_SQL` with :func:`event_counter`), so counts can never disagree
with the trail and a dashboard reads a few hundred rows instead of scanning millions of
certificates. High-volume happenings that are not audited one by one (verifications by link,
upload or offline bundle) are counted with :func:`bump` directly.

The dimension of an audit event is the first of ``details["type"]``, ``["method"]``,
``["channel"]``, ``["hall"]``, ``["assurance"]`` that is present ("" when none is).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from audit.models import AuditEvent, StatsDaily

__all__ = ["DIMENSION_KEYS", "UPSERT_SQL", "DAY_PARAM", "DailyCount", "dimension_of", "bump", "event_counter", "daily_counts", "summary", "totals", "to_csv",
           "rebuild_from_trail"]

DIMENSION_KEYS = ("type", "method", "channel", "hall", "assurance", "acr")

UPSERT_SQL = (
    "INSERT INTO stats_daily (department, day, metric, dimension, count) "
    "VALUES (:s_department, :s_day, :s_metric, :s_dimension, :s_n) "
    "ON CONFLICT (department, day, metric, dimension) DO UPDATE SET count = stats_daily.count + excluded.count"
)
DAY_PARAM = sa.bindparam("s_day", type_=sa.Date)
_UPSERT = sa.text(UPSERT_SQL).bindparams(DAY_PARAM)


@dataclass(frozen=True)
class DailyCount:
    department: str
    day: dt.date
    metric: str
    dimension: str
    count: int


def dimension_of(details: dict[str, Any] | None) -> str:
    for key in DIMENSION_KEYS:
        value = (details or {}).get(key)
        if value not in (None, ""):
            return str(value)[:64]
    return ""


def bump(session: Session, *, metric: str, day: dt.date, department: str | None = None, dimension: str = "",
         n: int = 1) -> None:
    """Add ``n`` to one counter in ``session``'s transaction (an upsert; SQLite >= 3.24 and PostgreSQL)."""
    session.execute(_UPSERT, _params(metric, day, department, dimension, n))


def _params(metric: str, day: dt.date, department: str | None, dimension: str, n: int) -> dict[str, Any]:
    return {"s_department": department or "", "s_day": day, "s_metric": metric[:64], "s_dimension": dimension[:64], "s_n": n}


def event_counter(*, action: str, department: str | None, details: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The :data:`UPSERT_SQL` parameters that count one audit event (``record_event`` runs it with the event)."""
    return _params(action, at.astimezone(dt.timezone.utc).date(), department, dimension_of(details), 1)


def _filtered(query: Any, start: dt.date, end: dt.date, departments: Sequence[str] | None, metric_prefix: str | None) -> Any:
    query = query.where(StatsDaily.day >= start, StatsDaily.day <= end)
    if departments is not None:
        query = query.where(col(StatsDaily.department).in_(list(departments)))
    if metric_prefix:
        query = query.where(StatsDaily.metric.startswith(metric_prefix))
    return query


def daily_counts(
    session: Session, *, start: dt.date, end: dt.date, departments: Sequence[str] | None = None,
    metric_prefix: str | None = None,
) -> list[DailyCount]:
    """Counters for ``start <= day <= end``; ``departments`` None means all (platform administrators)."""
    columns = (col(StatsDaily.department), col(StatsDaily.day), col(StatsDaily.metric), col(StatsDaily.dimension),
               col(StatsDaily.count))
    query = _filtered(sa.select(*columns), start, end, departments, metric_prefix).order_by(*columns[:4])
    return [DailyCount(str(a), _date(b), str(c), str(d), int(e)) for a, b, c, d, e in session.execute(query).all()]


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def summary(
    session: Session, *, start: dt.date, end: dt.date, by: str = "day", departments: Sequence[str] | None = None,
    metric_prefix: str | None = None,
) -> list[tuple[str, str, int]]:
    """Sums grouped in the database: ``(key, metric, count)`` with key the day, department or dimension."""
    keys = {"day": col(StatsDaily.day), "department": col(StatsDaily.department), "dimension": col(StatsDaily.dimension)}
    if by not in keys:
        raise ValueError(f"by must be one of {sorted(keys)}")
    key = keys[by]
    query = _filtered(sa.select(key, col(StatsDaily.metric), sa.func.sum(StatsDaily.count)), start, end, departments,
                      metric_prefix).group_by(key, StatsDaily.metric).order_by(key, StatsDaily.metric)
    return [(_date(k).isoformat() if by == "day" else str(k), str(m), int(n)) for k, m, n in session.execute(query).all()]


def totals(rows: Iterable[DailyCount]) -> dict[tuple[str, str], int]:
    """Sum over days: ``(metric, dimension) -> count``."""
    out: Counter[tuple[str, str]] = Counter()
    for row in rows:
        out[(row.metric, row.dimension)] += row.count
    return dict(out)


def to_csv(rows: Iterable[DailyCount]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["day", "department", "metric", "dimension", "count"])
    for r in rows:
        writer.writerow([r.day.isoformat(), r.department, r.metric, r.dimension, r.count])
    return buffer.getvalue()


def rebuild_from_trail(session: Session) -> int:
    """Recompute every audit-derived counter from the trail (after a restore); returns the rows written.

    Counters bumped directly (:func:`bump` without an audit event) are kept.
    """
    counts: Counter[tuple[str, dt.date, str, str]] = Counter()
    last = 0
    while True:
        page = session.exec(select(AuditEvent).where(AuditEvent.seq > last).order_by(col(AuditEvent.seq)).limit(5000)).all()
        for e in page:
            at = e.at if e.at.tzinfo else e.at.replace(tzinfo=dt.timezone.utc)
            counts[(e.department or "", at.astimezone(dt.timezone.utc).date(), e.action[:64], dimension_of(e.details))] += 1
        if len(page) < 5000:
            break
        last = page[-1].seq
    actions = {key[2] for key in counts}
    if actions:
        session.execute(sa.delete(StatsDaily).where(col(StatsDaily.metric).in_(actions)))
    for (department, day, metric, dimension), n in counts.items():
        session.add(StatsDaily(department=department, day=day, metric=metric, dimension=dimension, count=n))
    session.flush()
    return len(counts)

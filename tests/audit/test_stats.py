"""Daily statistics are counted with the audit events, in their transactions, and match the trail."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit import record_event
from audit.stats import bump, daily_counts, rebuild_from_trail, summary, to_csv, totals
from ecert.db import session_scope

DAY = dt.datetime(2027, 3, 14, 23, 30, tzinfo=dt.timezone.utc)


def test_events_are_counted_per_department_day_and_dimension(engine: Engine, uid: str) -> None:
    dep_a, dep_b = f"a{uid}", f"b{uid}"
    with session_scope(engine) as session:
        for _ in range(3):
            record_event(session, action="certificates.licence.issue", actor="x", department=dep_a,
                         details={"type": "FOOD/1"}, at=DAY)
        record_event(session, action="certificates.licence.issue", actor="x", department=dep_a,
                     details={"type": "BUILD/2"}, at=DAY + dt.timedelta(hours=1))  # next day in UTC
        record_event(session, action="identity.login", actor="x", department=dep_b, details={"method": "totp"}, at=DAY)
    with pytest.raises(RuntimeError):
        with session_scope(engine) as session:
            record_event(session, action="certificates.licence.issue", actor="x", department=dep_a,
                         details={"type": "FOOD/1"}, at=DAY)
            raise RuntimeError("rolled back: not counted")
    with Session(engine) as session:
        rows = daily_counts(session, start=DAY.date(), end=DAY.date() + dt.timedelta(days=1), departments=[dep_a])
        others = daily_counts(session, start=DAY.date(), end=DAY.date(), departments=[dep_b])
    assert [(r.day, r.metric, r.dimension, r.count) for r in rows] == [
        (DAY.date(), "certificates.licence.issue", "FOOD/1", 3),
        (DAY.date() + dt.timedelta(days=1), "certificates.licence.issue", "BUILD/2", 1),
    ]
    assert totals(others) == {("identity.login", "totp"): 1}  # a department sees only its own rows when asked so
    assert to_csv(rows).splitlines() == [
        "day,department,metric,dimension,count",
        f"2027-03-14,{dep_a},certificates.licence.issue,FOOD/1,3",
        f"2027-03-15,{dep_a},certificates.licence.issue,BUILD/2,1",
    ]


def test_direct_counters_and_rebuild_from_the_trail(engine: Engine, uid: str) -> None:
    dep = f"v{uid}"
    day = dt.date(2027, 4, 1)
    with session_scope(engine) as session:
        bump(session, metric="verify.link", day=day, department=dep, n=40)
        bump(session, metric="verify.link", day=day, department=dep, n=2)
        record_event(session, action="certificates.licence.revoke", actor="x", department=dep,
                     details={"type": "T/1"}, at=dt.datetime(2027, 4, 1, 8, tzinfo=dt.timezone.utc))
    with Session(engine) as session:
        before = daily_counts(session, start=day, end=day, departments=[dep])
    with session_scope(engine) as session:
        rebuild_from_trail(session)
    with Session(engine) as session:
        after = daily_counts(session, start=day, end=day, departments=[dep])
    assert before == after
    assert totals(after) == {("verify.link", ""): 42, ("certificates.licence.revoke", "T/1"): 1}


def test_summary_sums_in_the_database(engine: Engine, uid: str) -> None:
    deps = [f"s{uid}", f"t{uid}"]
    day = dt.date(2027, 5, 1)
    with session_scope(engine) as session:
        for i, dep in enumerate(deps):
            for offset in range(3):
                bump(session, metric="verify.upload", day=day + dt.timedelta(days=offset), department=dep, n=i + 1)
    with Session(engine) as session:
        by_department = summary(session, start=day, end=day + dt.timedelta(days=2), by="department", departments=deps)
        by_day = summary(session, start=day, end=day + dt.timedelta(days=1), by="day", departments=deps,
                         metric_prefix="verify.")
    assert by_department == [(deps[0], "verify.upload", 3), (deps[1], "verify.upload", 6)]
    assert by_day == [("2027-05-01", "verify.upload", 3), ("2027-05-02", "verify.upload", 3)]
    with pytest.raises(ValueError):
        summary(Session(engine), start=day, end=day, by="actor")

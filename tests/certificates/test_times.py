"""Instants of the legal record round-trip exactly, whatever their offset, on SQLite and PostgreSQL; out-of-range and
naive times are refused with a pointer; people read times in the deployment's zone, labelled."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from certificates.issuance import Actor, Issuer
from certificates.models import Licence, LicenceEvent, LicenceType
from certificates.times import EARLIEST, LATEST, checked_instant
from certificates.types import validity_window
from ecert.errors import InvalidInput
from ecert.localtime import LocalTime, zone_named

OFFSETS = st.integers(-14 * 3600, 14 * 3600).map(lambda s: dt.timezone(dt.timedelta(seconds=s)))
INSTANTS = st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(8999, 1, 1), timezones=OFFSETS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(effective=INSTANTS, at=INSTANTS)
def test_instants_with_any_offset_round_trip_exactly(engine: Engine, effective: dt.datetime, at: dt.datetime) -> None:
    licence_id = uuid.uuid4().hex
    with Session(engine) as session:
        session.add(LicenceEvent(licence_id=licence_id, action="issue", to_status="valid", effective_at=effective,
                                 actor="test", at=at))
        session.commit()
    with Session(engine) as session:
        row = session.exec(select(LicenceEvent).where(LicenceEvent.licence_id == licence_id)).one()
        assert row.effective_at == effective and row.at == at  # the same instants
        assert row.effective_at.utcoffset() == dt.timedelta(0) and row.at.utcoffset() == dt.timedelta(0)
        # a query bound with another offset finds the row: comparisons are between instants too
        found = session.exec(select(LicenceEvent.id).where(
            LicenceEvent.licence_id == licence_id, LicenceEvent.effective_at == effective.astimezone(dt.timezone.utc))).all()
        assert len(found) == 1


def test_a_naive_time_is_never_written(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(LicenceEvent(licence_id=uuid.uuid4().hex, action="issue", to_status="valid",
                                 effective_at=dt.datetime(2020, 1, 1), actor="test", at=dt.datetime.now(dt.timezone.utc)))
        with pytest.raises(Exception, match="naive"):
            session.flush()


@pytest.mark.parametrize("value", [
    dt.datetime(9995, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-8))), dt.datetime(2020, 1, 1), "2020-01-01",
])
def test_times_out_of_range_or_naive_are_refused_with_a_pointer(value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_instant(value, "#/valid_from")
    assert refused.value.extensions["errors"][0]["pointer"] == "#/valid_from"


def test_accepted_times_become_utc() -> None:
    beijing = dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert checked_instant(beijing, "#/x") == dt.datetime(2019, 12, 31, 16, tzinfo=dt.timezone.utc)
    assert checked_instant(beijing, "#/x").utcoffset() == dt.timedelta(0)
    assert checked_instant(EARLIEST, "#/x") == EARLIEST
    with pytest.raises(InvalidInput):
        checked_instant(LATEST, "#/x")


def test_people_read_times_in_the_deployment_zone_with_its_offset() -> None:
    shanghai = LocalTime(zone_named("Asia/Shanghai"))
    moment = dt.datetime(2019, 12, 31, 16, 5, 9, tzinfo=dt.timezone.utc)
    assert shanghai.minute(moment) == "2020-01-01 00:05 (UTC+08:00)"
    assert shanghai.second(moment) == "2020-01-01 00:05:09 (UTC+08:00)"
    assert shanghai.day(moment) == "2020-01-01"
    berlin = LocalTime(zone_named("Europe/Berlin"))
    assert berlin.minute(dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)) == "2026-07-01 02:00 (UTC+02:00)"
    assert berlin.minute(dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)) == "2026-12-01 01:00 (UTC+01:00)"
    with pytest.raises(ValueError):
        zone_named("Mars/Olympus")


@pytest.mark.parametrize("validity, fields, pointer", [
    ({"kind": "years", "years": 36600}, {}, "#/valid_from"),
    ({"kind": "days", "days": 36600 * 365}, {}, "#/valid_from"),
    ({"kind": "until_field", "field": "until"}, {"until": "9999-12-31"}, "#/fields/until"),
])
def test_an_end_of_validity_beyond_the_calendar_is_invalid_input(
    validity: dict[str, object], fields: dict[str, object], pointer: str
) -> None:
    kind = LicenceType(code="X", department_code="D", name_zh="x", name_en="x", validity=validity,
                       created_at=dt.datetime.now(dt.timezone.utc), created_by="test")
    with pytest.raises(InvalidInput) as refused:
        validity_window(kind, fields, dt.datetime(8999, 1, 1, tzinfo=dt.timezone.utc))
    assert refused.value.extensions["errors"][0]["pointer"] == pointer


def test_every_time_of_a_stored_licence_is_read_with_an_offset(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    """What ``/api/v1/me/licences`` and the department API return, read back from the database."""
    from certificates.disclosure import public_view
    from certificates.views import licence_view
    from tests.certificates.test_issuance import issue

    beijing = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    licence = issue(engine, issuer, actor, department, valid_from=beijing)
    with Session(engine) as session:
        stored = session.get(Licence, licence.id)
        assert stored is not None
        now = dt.datetime.now(dt.timezone.utc)
        public, full = public_view(stored, licence_type, now=now), licence_view(stored, now=now, public_url="https://x")
    for view in (public, full):
        assert view["valid_from"] == "2025-12-31T16:00:00+00:00"
        assert all(view[k].endswith("+00:00") for k in ("valid_from", "valid_until", "issued_at"))

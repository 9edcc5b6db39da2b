"""Licences issued before ecert are recorded as historical imports; the expiry sweep never jams on one licence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates.issuance import Actor, Issuer
from certificates.lifecycle import Action, Status
from certificates.models import Licence, LicenceType
from certificates.records import change_status, effective_status, expire_due, history
from certificates.types import add_type, parse_type_spec
from certificates.views import licence_view
from ecert.clock import FixedClock
from ecert.cli import main
from ecert.db import make_engine, migrate, session_scope
from ecert.errors import InvalidInput
from tests.certificates.conftest import BUSINESS_TYPE
from tests.certificates.test_issuance import issue

UTC = dt.timezone.utc
BEIJING = dt.timezone(dt.timedelta(hours=8))


def test_an_already_expired_licence_is_not_issued_as_new(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with pytest.raises(InvalidInput) as refused:
        issue(engine, issuer, actor, department, valid_from=dt.datetime(2000, 1, 1, tzinfo=BEIJING))
    assert refused.value.extensions["errors"][0]["pointer"] == "#/valid_from"
    assert "historical" in refused.value.detail


def test_a_historical_record_starts_in_the_past(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    tomorrow = dt.datetime.now(UTC) + dt.timedelta(days=1)
    with pytest.raises(InvalidInput) as refused:
        issue(engine, issuer, actor, department, valid_from=tomorrow, historical=True)
    assert refused.value.extensions["errors"][0]["pointer"] == "#/valid_from"


def test_an_expired_historical_record_is_imported_and_swept_in_order(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    start = dt.datetime(2000, 1, 1, tzinfo=BEIJING)
    licence = issue(engine, issuer, actor, department, valid_from=start, historical=True)
    assert licence.historical and licence.valid_from == start and licence.valid_until == dt.datetime(2005, 1, 1, tzinfo=BEIJING)
    now = dt.datetime.now(UTC)
    view = licence_view(licence, now=now, public_url="https://ecert.example")
    assert view["historical"] is True and view["status"] == "expired"
    assert view["valid_from"] == "1999-12-31T16:00:00+00:00"
    with session_scope(engine) as session:
        assert expire_due(session, now=now, department_code=department).expired == 1
    with Session(engine) as session:
        stored = session.get(Licence, licence.id)
        assert stored is not None and stored.status == "expired" and effective_status(stored, now) is Status.EXPIRED
        events = history(session, licence.id)
        assert [(e.action, e.effective_at) for e in events] == [("import", start), ("expire", licence.valid_until)]
    # back-dated revocation of a historical record: allowed back to its start, never before
    clock = FixedClock(now)
    with session_scope(engine) as session:
        revoked = change_status(session, actor, licence.id, Action.REVOKE, reason="found forged",
                                effective_at=dt.datetime(2006, 1, 1, tzinfo=UTC), clock=clock)
        assert revoked.status == "revoked"


def _jam(engine: Engine, licence: Licence, *, valid_until: dt.datetime, issued_from: dt.datetime | None = None) -> None:
    """Write what earlier releases could leave behind (direct SQL, as a restored backup would)."""
    with session_scope(engine) as session:
        session.execute(sa.update(Licence).where(Licence.id == licence.id).values(
            valid_until=valid_until, **({"valid_from": issued_from} if issued_from else {})))
        if issued_from is not None:
            session.execute(sa.text("UPDATE licence_event SET effective_at = :at WHERE licence_id = :id"),
                            {"at": issued_from.astimezone(UTC).replace(tzinfo=None) if engine.dialect.name == "sqlite"
                             else issued_from, "id": licence.id})


def test_a_back_dated_licence_of_an_earlier_release_is_swept(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    """An earlier release issued back-dated licences as new (valid_until before issued_at): expiry, a fact of the
    validity window, is recorded at valid_until all the same."""
    licence = issue(engine, issuer, actor, department)
    _jam(engine, licence, valid_until=dt.datetime(2005, 1, 1, tzinfo=UTC), issued_from=dt.datetime(2000, 1, 1, tzinfo=UTC))
    with session_scope(engine) as session:
        report = expire_due(session, now=dt.datetime.now(UTC), department_code=department)
    assert (report.expired, report.failed) == (1, {})


def test_one_licence_that_cannot_expire_never_stops_the_sweep(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    broken, good = issue(engine, issuer, actor, department), issue(engine, issuer, actor, department)
    now = dt.datetime.now(UTC) + dt.timedelta(days=6 * 366)
    # valid_until before the licence's own first event: no expiry can be recorded in order
    _jam(engine, broken, valid_until=broken.valid_from - dt.timedelta(days=1))
    try:
        with session_scope(engine) as session:
            report = expire_due(session, now=now, department_code=department)
        assert report.expired == 1 and list(report.failed) == [broken.id]
        assert "is before" in report.failed[broken.id]
        with Session(engine) as session:
            assert session.get(Licence, good.id).status == "expired"  # type: ignore[union-attr]
            assert session.get(Licence, broken.id).status == "valid"  # type: ignore[union-attr]
        with session_scope(engine) as session:  # a known failure is not tried again
            again = expire_due(session, now=now, department_code=department, skip=report.failed)
        assert (again.expired, again.failed) == (0, {})
    finally:
        with session_scope(engine) as session:  # leave nothing that would trip other tests' sweeps
            session.execute(sa.update(Licence).where(Licence.id == broken.id).values(status="revoked"))


def test_the_expire_command_reports_what_it_could_not_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], issuer: Issuer,
) -> None:
    """``ecert licence expire`` expires the others, lists the licence it could not expire and exits 1."""
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ECERT_DEMO", "false")
    for name in ("ECERT_DATABASE_URL", "ECERT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    own = make_engine(f"sqlite:///{tmp_path / 'ecert.db'}")
    migrate(own)
    actor = Actor("client:cli", "CLIDEP")
    with session_scope(own) as session:
        add_type(session, department_code="CLIDEP", spec=parse_type_spec(BUSINESS_TYPE), actor="test", now=dt.datetime.now(UTC))
    old = dt.datetime(2000, 1, 1, tzinfo=UTC)
    broken, good = (issue(own, issuer, actor, "CLIDEP", valid_from=old, historical=True) for _ in range(2))
    _jam(own, broken, valid_until=old - dt.timedelta(days=1))
    own.dispose()
    assert main(["--json", "licence", "expire"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["expired"] == 1 and [f["licence"] for f in out["failed"]] == [broken.id]

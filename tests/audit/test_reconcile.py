"""``ecert audit reconcile``: a licence's state, history, audit events and transparency leaf agree, and every
out-of-band edit of one of them is reported (exit 1); audit commands refuse a database that does not exist."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor, Issuer
from certificates.lifecycle import Action
from certificates.models import Licence
from certificates.records import amend, change_status
from certificates.types import add_type, parse_type_spec
from ecert.cli import main
from ecert.clock import SystemClock
from ecert.db import session_scope
from keys import TransitKeyStore
from tests.audit.test_cli_verify import own_database  # noqa: F401  (fixture)
from tests.certificates.conftest import BUSINESS_TYPE, TransitSealKeys, request_for

DEPARTMENT = "RECON"
ACTOR = Actor("client:recon", DEPARTMENT)


@pytest.fixture
def register(own_database: tuple[Engine, str], keystore: TransitKeyStore,  # noqa: F811
             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Engine, dict[str, Licence]]:
    """Four licences of one department in a database of their own: valid, revoked, amended (old and new)."""
    engine, url = own_database
    for name, value in {"ECERT_DATABASE_URL": url, "ECERT_AUTO_MIGRATE": "false", "ECERT_DEMO": "false",
                        "ECERT_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ECERT_CONFIG", raising=False)
    issuer = Issuer(keystore=keystore, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=TransitSealKeys(keystore),
                    sealer=None, public_url="https://ecert.example")
    with session_scope(engine) as session:
        add_type(session, department_code=DEPARTMENT, spec=parse_type_spec(BUSINESS_TYPE), actor="test",
                 now=dt.datetime.now(dt.timezone.utc))
    licences = {}
    for name in ("valid", "revoked", "amended"):
        with session_scope(engine) as session:
            prepared = issuer.prepare(session, ACTOR, DEPARTMENT, request_for())
            licences[name] = issuer.issue_one(session, ACTOR, prepared)[0]
    with session_scope(engine) as session:
        change_status(session, ACTOR, licences["revoked"].id, Action.REVOKE, reason="fraud", effective_at=None,
                      clock=SystemClock())
    with session_scope(engine) as session:
        licences["new"] = amend(session, issuer, ACTOR, licences["amended"].id, fields={"company": "新名称", "capital": 5},
                                holder_name=None, reason="renamed", idempotency_key=None)[0]
    return engine, licences


def _reconcile(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["audit", "reconcile", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_an_untouched_register_reconciles(register: tuple[Engine, dict[str, Licence]],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _reconcile(capsys)
    assert (code, report["ok"], report["licences"], report["mismatches"]) == (0, True, 4, [])


def _sql(statement: str, **params: str) -> Callable[[Engine, dict[str, Licence]], None]:
    """Tamper with SQL; a parameter naming a licence ("revoked") or its audit target ("licence:revoked") is resolved."""
    def value(name: str, licences: dict[str, Licence]) -> str:
        if name.startswith("licence:"):
            return "licence:" + licences[name[8:]].id
        return licences[name].id if name in licences else name

    def tamper(engine: Engine, licences: dict[str, Licence]) -> None:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), {k: value(v, licences) for k, v in params.items()})
    return tamper


def _leaf(engine: Engine, licences: dict[str, Licence]) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE tlog_leaf SET cert_digest = :d WHERE idx = :i"),
                           {"d": b"\x00" * 32, "i": licences["valid"].log_index})


TAMPERING = {
    "status edited in the table": ("valid", "history", _sql("UPDATE licence SET status = 'suspended' WHERE id = :id", id="valid")),
    "revocation undone in the table": ("revoked", "history", _sql(
        "UPDATE licence SET status = 'valid', status_reason = NULL WHERE id = :id", id="revoked")),
    "leaf edited": ("valid", "transparency", _leaf),
    "history event deleted": ("revoked", "history", _sql(
        "DELETE FROM licence_event WHERE licence_id = :id AND action = 'revoke'", id="revoked")),
    "history event inserted": ("valid", "audit", _sql(
        "INSERT INTO licence_event (licence_id, action, from_status, to_status, reason, effective_at, actor, at) "
        "SELECT licence_id, 'reinstate', 'valid', 'valid', NULL, effective_at, 'x', at FROM licence_event "
        "WHERE licence_id = :id", id="valid")),
    "history event edited": ("revoked", "history", _sql(
        "UPDATE licence_event SET to_status = 'suspended' WHERE licence_id = :id AND action = 'revoke'", id="revoked")),
    "audit event deleted": ("revoked", "audit", _sql(
        "DELETE FROM audit_event WHERE target = :t AND action = 'certificates.licence.revoke'", t="licence:revoked")),
    "audit event edited": ("revoked", "audit", _sql(
        "UPDATE audit_event SET action = 'certificates.licence.suspend' WHERE target = :t "
        "AND action = 'certificates.licence.revoke'", t="licence:revoked")),
    "events reordered": ("revoked", "history", _sql(
        "UPDATE licence_event SET effective_at = :early WHERE licence_id = :id AND action = 'revoke'",
        id="revoked", early="1999-01-01 00:00:00")),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_every_out_of_band_change_is_reported(register: tuple[Engine, dict[str, Licence]],
                                             capsys: pytest.CaptureFixture[str], case: str) -> None:
    engine, licences = register
    victim, kind, tamper = TAMPERING[case]
    tamper(engine, licences)
    code, report = _reconcile(capsys)
    assert code == 1 and not report["ok"]
    found = {(m["licence_id"], m["kind"]) for m in report["mismatches"]}
    assert (licences[victim].id, kind) in found, report["mismatches"]
    assert {m["licence_id"] for m in report["mismatches"]} == {licences[victim].id}  # nothing else accused


def test_audit_commands_refuse_a_database_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ECERT_DEMO", "false")
    for name in ("ECERT_DATABASE_URL", "ECERT_CONFIG", "ECERT_AUTO_MIGRATE"):
        monkeypatch.delenv(name, raising=False)
    for command in (["audit", "verify"], ["audit", "reconcile"]):
        assert main(command) == 2
        assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "nowhere" / "ecert.db").exists()

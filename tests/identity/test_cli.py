"""``ecert client add / list / disable`` and ``ecert token rotate`` against a fresh SQLite database."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from audit.models import AuditEvent
from ca.departments import add_department
from ecert.cli import main
from ecert.db import make_engine, migrate, session_scope
from identity.clients import authenticate
from keys import TransitKeyStore, VaultCredentials
from keys.openbao import ManagedOpenBao


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.engine.Engine:
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ECERT_DEMO", "false")
    for name in ("ECERT_DATABASE_URL", "ECERT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'ecert.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        add_department(session, "GZAIC", "市场监督管理局", actor="test", now=dt.datetime.now(dt.timezone.utc))
    return engine


def test_client_add_prints_the_secret_once(cli_db: sa.engine.Engine, capsys: pytest.CaptureFixture[str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["client", "add", "--department", "GZAIC", "--scope", "licences:read", "--name", "registry", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert (added["department"], added["scopes"], added["name"]) == ("GZAIC", ["licences:read"], "registry")
    with Session(cli_db) as session:
        assert authenticate(session, added["client_id"], added["client_secret"], now=dt.datetime.now(dt.timezone.utc))
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.target == f"client:{added['client_id']}")).all()
    assert [(e.action, e.actor) for e in events] == [("identity.client.create", "cli:operator")]
    assert main(["client", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["client_id"] for c in listed] == [added["client_id"]] and "client_secret" not in listed[0]
    assert added["client_secret"] not in caplog.text


def test_client_add_defaults_and_admin(cli_db: sa.engine.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "add", "--department", "GZAIC"]) == 0
    out = capsys.readouterr().out
    assert "client_secret: " in out and "licences:issue licences:manage licences:read types:manage" in out
    assert main(["--json", "client", "add", "--admin"]) == 0
    admin = json.loads(capsys.readouterr().out)
    assert (admin["department"], admin["scopes"]) == (None, ["platform:admin"])
    assert main(["client", "add", "--admin", "--department", "GZAIC"]) == 2
    assert main(["client", "add"]) == 2
    assert main(["client", "add", "--department", "NOSUCH"]) == 2
    assert "NOSUCH" in capsys.readouterr().err
    assert main(["client", "add", "--department", "GZAIC", "--scope", "root"]) == 2


def test_client_disable(cli_db: sa.engine.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "add", "--department", "GZAIC", "--json"]) == 0
    client_id = json.loads(capsys.readouterr().out)["client_id"]
    assert main(["client", "disable", client_id]) == 0
    assert "disabled" in capsys.readouterr().out
    assert main(["client", "disable", client_id]) == 2
    assert main(["client", "disable", "cl_" + "0" * 20]) == 2
    assert main(["client", "list"]) == 0
    assert "disabled" in capsys.readouterr().out


def test_token_rotate(cli_db: sa.engine.Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                      openbao: ManagedOpenBao, vault_credentials: VaultCredentials, keystore: TransitKeyStore,
                      uid: str) -> None:
    monkeypatch.setenv("ECERT_VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("ECERT_VAULT_ROLE_ID", vault_credentials.role_id or "")
    monkeypatch.setenv("ECERT_VAULT_SECRET_ID", vault_credentials.secret_id or "")
    assert main(["token", "rotate", "--key", f"tok-cli-{uid}", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert (rotated["latest_version"], rotated["versions"]) == (2, [1, 2])
    assert keystore.key_info(f"tok-cli-{uid}").latest_version == 2

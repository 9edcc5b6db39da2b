"""``ecert staff add`` and ``ecert rp add`` against a fresh SQLite database and the test OpenBao."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from ecert.cli import main
from identity import login
from identity.models import RelyingParty
from keys import VaultCredentials
from keys.openbao import ManagedOpenBao
from tests.identity.conftest import PASSWORD, person_id
from tests.identity.test_cli import cli_db  # noqa: F401 - shared fixture


def test_staff_add_then_log_in(cli_db: sa.engine.Engine, capsys: pytest.CaptureFixture[str],  # noqa: F811
                               monkeypatch: pytest.MonkeyPatch, openbao: ManagedOpenBao, vault_credentials: VaultCredentials,
                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ECERT_VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("ECERT_VAULT_ROLE_ID", vault_credentials.role_id or "")
    monkeypatch.setenv("ECERT_VAULT_SECRET_ID", vault_credentials.secret_id or "")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    id_number = person_id()
    assert main(["staff", "add", "--username", "Clerk1", "--name", "王", "--id-number", id_number, "--hall", "YUEXIU-2",
                 "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert (added["username"], added["hall"], added["roles"]) == ("clerk1", "YUEXIU-2", ["counter"])
    with Session(cli_db) as session:
        result = login.login_password(session, None, login_name="clerk1", password=PASSWORD, staff=True,
                                      now=dt.datetime.now(dt.timezone.utc))
        assert result.session.session.account_id == added["account_id"]
    assert id_number not in caplog.text and PASSWORD not in caplog.text


def test_rp_add(cli_db: sa.engine.Engine, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["rp", "add", "--name", "社保", "--redirect-uri", "https://si.example/cb", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["client_id"].startswith("rp_") and added["client_secret"] and added["scopes"] == ["openid", "profile"]
    assert main(["rp", "add", "--name", "app", "--redirect-uri", "https://app.example/cb", "--public"]) == 0
    assert "PKCE only" in capsys.readouterr().out
    assert main(["rp", "add", "--name", "bad", "--redirect-uri", "http://evil.example/cb"]) == 2  # http only for localhost
    assert main(["rp", "add", "--name", "jobs", "--redirect-uri", "https://jobs.example/cb", "--scope", "openid",
                 "--scope", "licences:own", "--purpose", "employment", "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert main(["rp", "add", "--name", "bad", "--redirect-uri", "https://jobs.example/cb", "--purpose", "x"]) == 2
    with Session(cli_db) as session:
        assert session.get(RelyingParty, added["client_id"]) is not None
        assert session.get(RelyingParty, jobs["client_id"]).purpose == "employment"  # type: ignore[union-attr]

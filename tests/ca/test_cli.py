"""``ecert ca init``, ``department add/list/disable``, ``seal renew/list`` and ``cert revoke`` on a fresh database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecert.cli import main
from keys import VaultCredentials
from keys.openbao import ManagedOpenBao


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openbao: ManagedOpenBao, vault_credentials: VaultCredentials) -> Path:
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ECERT_DEMO", "false")
    monkeypatch.setenv("ECERT_VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("ECERT_VAULT_ROLE_ID", vault_credentials.role_id or "")
    monkeypatch.setenv("ECERT_VAULT_SECRET_ID", vault_credentials.secret_id or "")
    for name in ("ECERT_DATABASE_URL", "ECERT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_the_operator_runs_the_ca_from_the_command_line(cli_env: Path, capsys: pytest.CaptureFixture[str], uid: str) -> None:
    assert main(["ca", "init", "--json"]) == 0
    first = _json(capsys)
    assert main(["ca", "init", "--json"]) == 0
    assert _json(capsys) == first  # idempotent
    assert set(first) == {"root-1", "issuing-1"}  # type: ignore[arg-type]

    code = f"Q{uid.upper()}"
    assert main(["department", "add", code, "公安厅", "--name-en", "Public Security", "--json"]) == 0
    added = _json(capsys)
    assert added["code"] == code and added["seal"]["key"].endswith(":v1")  # type: ignore[index]
    assert main(["department", "add", code, "again"]) == 2
    assert "already exists" in capsys.readouterr().err

    assert main(["seal", "renew", code, "--json"]) == 0
    renewed = _json(capsys)
    assert main(["seal", "list", code, "--json"]) == 0
    assert [s["serial"] for s in _json(capsys)] == [renewed["serial"], added["seal"]["serial"]]  # type: ignore[index,union-attr]

    assert main(["cert", "revoke", added["seal"]["serial"], "--reason", "superseded", "--json"]) == 0  # type: ignore[index]
    assert _json(capsys)["reason"] == "superseded"  # type: ignore[index]
    assert main(["cert", "revoke", added["seal"]["serial"], "--reason", "superseded"]) == 2  # type: ignore[index]
    assert "already revoked" in capsys.readouterr().err

    assert main(["department", "disable", code]) == 0
    capsys.readouterr()
    assert main(["department", "list", "--all", "--json"]) == 0
    assert _json(capsys) == [{"code": code, "name": "公安厅", "name_en": "Public Security", "disabled": True}]
    assert main(["seal", "renew", code]) == 2
    assert "disabled" in capsys.readouterr().err

"""``ecert type add / list / disable`` against a fresh SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecert.cli import main
from tests.support.licences import BUSINESS_TYPE


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ECERT_DEMO", "false")
    for name in ("ECERT_DATABASE_URL", "ECERT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_type_add_and_list(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = cli_env / "bl.json"
    spec.write_text(json.dumps(BUSINESS_TYPE, ensure_ascii=False), encoding="utf-8")
    assert main(["type", "add", "--department", "GZAIC", str(spec), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert (added["code"], added["department"], added["version"]) == ("BL", "GZAIC", 1)
    assert main(["--json", "type", "add", "--department", "GZAIC", str(spec)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert main(["type", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["code"], t["version"], t["active"]) for t in listed] == [("BL", 1, True), ("BL", 2, True)]
    assert main(["type", "disable", "--department", "GZAIC", "BL"]) == 0
    assert "disabled" in capsys.readouterr().out
    assert main(["type", "list"]) == 0
    assert capsys.readouterr().out.count("disabled") == 2


def test_type_add_names_each_problem(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = cli_env / "bad.json"
    spec.write_text(json.dumps({**BUSINESS_TYPE, "code": "bad code", "validity": {"kind": "forever"}}), encoding="utf-8")
    assert main(["type", "add", "--department", "GZAIC", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "#/code" in err and "#/validity/kind" in err
    assert main(["type", "add", "--department", "GZAIC", str(cli_env / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err

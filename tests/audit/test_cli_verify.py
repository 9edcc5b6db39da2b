"""``ecert audit verify`` end to end on a database of its own, tampered with and committed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit import record_event
from audit.checkpoints import take_checkpoint
from ecert.clock import SystemClock
from ecert.db import make_engine, migrate, session_scope
from ecert.settings import Settings
from keys import TransitKeyStore

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """A fresh migrated database (and the URL the CLI should use), because this test commits its tampering."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/own.db"
        engine = make_engine(url)
        migrate(engine)
        yield engine, url
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not available (set ECERT_TEST_POSTGRES_URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(engine)
        yield engine, POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _verify(settings: Settings, url: str) -> tuple[int, dict]:
    env = {
        **os.environ, "PYTHONPATH": os.getcwd(), "ECERT_DATABASE_URL": url, "ECERT_AUTO_MIGRATE": "false",
        "ECERT_VAULT_ADDR": settings.vault_addr or "", "ECERT_VAULT_ROLE_ID": settings.vault_role_id or "",
        "ECERT_VAULT_SECRET_ID": settings.vault_secret_id.get_secret_value() if settings.vault_secret_id else "",
        "ECERT_DATA_DIR": str(settings.data_dir), "ECERT_DEMO": "false",
    }
    out = subprocess.run([sys.executable, "-m", "ecert.cli", "audit", "verify", "--json"], capture_output=True, text=True,
                         env=env, timeout=120)
    return out.returncode, json.loads(out.stdout)


def test_cli_names_the_first_bad_entry(own_database: tuple[Engine, str], keystore: TransitKeyStore,
                                       settings: Settings) -> None:
    engine, url = own_database
    with session_scope(engine) as session:
        for i in range(12):
            record_event(session, action="test.cli", actor="system", target=f"t:{i}", details={"i": i})
    take_checkpoint(engine, keystore, SystemClock())
    code, report = _verify(settings, url)
    assert code == 0 and report["ok"] and report["events"] == 12 and report["checkpoints"] == 1
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_event SET details = :d WHERE seq = 9"), {"d": json.dumps({"i": 99})})
        connection.execute(sa.text("DELETE FROM audit_event WHERE seq = 4"))
    code, report = _verify(settings, url)
    assert code == 1 and not report["ok"]
    assert report["first_bad_seq"] == 4 and report["problems"][0]["kind"] == "missing"

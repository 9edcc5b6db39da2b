"""Running ``ecert`` commands in a child process against a test database and OpenBao."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ecert.settings import Settings


def run_cli(settings: Settings, engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    env = {
        **os.environ, "PYTHONPATH": os.getcwd(), "ECERT_DATABASE_URL": url, "ECERT_AUTO_MIGRATE": "false",
        "ECERT_VAULT_ADDR": settings.vault_addr or "", "ECERT_VAULT_ROLE_ID": settings.vault_role_id or "",
        "ECERT_VAULT_SECRET_ID": settings.vault_secret_id.get_secret_value() if settings.vault_secret_id else "",
        "ECERT_DATA_DIR": str(settings.data_dir), "ECERT_DEMO": "false",
    }
    return subprocess.run([sys.executable, "-m", "ecert.cli", *args], capture_output=True, text=True, env=env, timeout=120)

"""Settings refuse typos and nonsense, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecert.errors import ConfigurationError
from ecert.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ECERT_") or name.startswith("VAULT_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECERT_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.embedded_vault
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/ecert.db"
    assert settings.port == 8000


def test_unknown_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECERT_DATABSE_URL", "postgresql://typo")
    with pytest.raises(ConfigurationError, match="ECERT_DATABSE_URL"):
        load_settings()


def test_invalid_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECERT_PORT", "eighty")
    with pytest.raises(ConfigurationError, match="port"):
        load_settings()


def test_config_file_unknown_key_and_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ecert.toml"
    monkeypatch.setenv("ECERT_CONFIG", str(config))
    config.write_text('port = 9000\npublic_url = "https://ecert.example.gov.cn"\n')
    assert load_settings().port == 9000
    config.write_text("port = 9000\nworkerz = 4\n")
    with pytest.raises(ConfigurationError, match="workerz"):
        load_settings()
    config.write_text("port = = broken")
    with pytest.raises(ConfigurationError, match="configuration file"):
        load_settings()


def test_external_vault_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://vault.internal:8200")
    with pytest.raises(ConfigurationError, match="vault_token or vault_role_id"):
        load_settings()
    monkeypatch.setenv("VAULT_TOKEN", "s.token")
    settings = load_settings()
    assert not settings.embedded_vault and "s.token" not in repr(settings)


def test_production_refuses_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECERT_ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        load_settings()
    monkeypatch.setenv("ECERT_DATABASE_URL", "postgresql+psycopg://ecert@db/ecert")
    monkeypatch.setenv("VAULT_ADDR", "https://vault.internal:8200")
    monkeypatch.setenv("ECERT_VAULT_ROLE_ID", "role")
    monkeypatch.setenv("ECERT_VAULT_SECRET_ID", "secret")
    with pytest.raises(ConfigurationError, match="demo"):
        load_settings()
    monkeypatch.setenv("ECERT_DEMO", "false")
    assert load_settings().environment == "production"


def test_the_cli_reports_bad_settings_and_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from ecert.cli import main

    monkeypatch.setenv("ECERT_NO_SUCH_THING", "1")
    assert main(["vault", "status"]) == 2
    assert "ECERT_NO_SUCH_THING" in capsys.readouterr().err


def test_the_time_zone_is_a_known_zone_and_sets_how_times_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from ecert.localtime import DEFAULT_ZONE, local_time, use_zone

    assert load_settings().time_zone == "Asia/Shanghai" == local_time().name
    monkeypatch.setenv("ECERT_TIME_ZONE", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="time_zone"):
        load_settings()
    monkeypatch.setenv("ECERT_TIME_ZONE", "Europe/Berlin")
    try:
        assert load_settings().time_zone == "Europe/Berlin"
        assert local_time().minute(dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)) == "2026-07-01 02:00 (UTC+02:00)"
    finally:
        use_zone(DEFAULT_ZONE)


def test_the_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """var/ecert.db and its WAL were 0644 in a 0755 directory: holder data for every local user."""
    import stat

    import sqlalchemy as sa

    from ecert.db import make_engine

    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    (old / "ecert.db").touch(mode=0o644)
    for directory in (tmp_path / "new" / "var", old):
        engine = make_engine(f"sqlite:///{directory / 'ecert.db'}")
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
            files = sorted(p.name for p in directory.iterdir())
            assert files == ["ecert.db", "ecert.db-shm", "ecert.db-wal"]
            for name in files:
                assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        engine.dispose()

"""`ecert serve` as a user runs it: embedded OpenBao + SQLite, ready, killed, restarted, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keys import KeyType, TransitKeyStore, VaultConnection, VaultCredentials
from keys.openbao import free_port

READY_WITHIN = 120


def _serve(data_dir: Path, port: int, vault_port: int, *, demo: bool = False) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECERT_", "VAULT_"))}
    env.update(
        ECERT_DATA_DIR=str(data_dir),
        ECERT_PORT=str(port),
        ECERT_EMBEDDED_VAULT_PORT=str(vault_port),
        ECERT_PUBLIC_URL=f"http://127.0.0.1:{port}",
        ECERT_DEMO=str(demo).lower(),
    )
    log = open(data_dir.parent / f"serve-{port}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "ecert.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < READY_WITHIN:
        assert process.poll() is None, "ecert serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"not ready within {READY_WITHIN}s")


@pytest.fixture
def ports() -> tuple[int, int]:
    vault_port = free_port()
    return free_port(), vault_port


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "var"
    yield directory
    pid_file = directory / "openbao" / "openbao.pid"
    if pid_file.exists():  # never leave an OpenBao behind
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def test_serve_starts_survives_sigkill_and_keeps_keys_and_data(data_dir: Path, ports: tuple[int, int]) -> None:
    port, vault_port = ports
    process = _serve(data_dir, port, vault_port)
    try:
        _wait_ready(port, process)
        init = json.loads((data_dir / "openbao" / "init.json").read_text())
        assert (data_dir / "ecert.db").exists()
        # A key made through the service's own policy, to see it survive.
        store = TransitKeyStore(VaultConnection(f"http://127.0.0.1:{vault_port}", VaultCredentials(token=init["root_token"])))
        before = store.create("survives-restart", KeyType.EC_P256).public_key()
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the API dies hard; its OpenBao keeps running
        process.wait()

    # Simulate a machine restart: the OpenBao process goes too.
    vault_pid = int((data_dir / "openbao" / "openbao.pid").read_text())
    os.kill(vault_pid, signal.SIGKILL)
    time.sleep(0.5)

    process = _serve(data_dir, port, vault_port)
    try:
        _wait_ready(port, process)
        assert json.loads((data_dir / "openbao" / "init.json").read_text()) == init  # not re-initialised
        store = TransitKeyStore(VaultConnection(f"http://127.0.0.1:{vault_port}", VaultCredentials(token=init["root_token"])))
        assert store.key_info("survives-restart").public_key().public_numbers() == before.public_numbers()  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGTERM)  # a clean stop also stops the OpenBao it started
        process.wait(timeout=30)
    assert not (data_dir / "openbao" / "openbao.pid").exists()


def test_serve_refuses_a_bad_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECERT_", "VAULT_"))}
    env.update(ECERT_DATA_DIR=str(tmp_path), ECERT_WORKERZ="2")
    result = subprocess.run([sys.executable, "-m", "ecert.cli", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ECERT_WORKERZ" in result.stderr


def test_serve_uses_an_external_vault_with_several_workers(
    tmp_path: Path, openbao, vault_credentials  # type: ignore[no-untyped-def]
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECERT_", "VAULT_"))}
    env.update(
        ECERT_DATA_DIR=str(tmp_path / "var"),
        ECERT_PORT=str(port),
        ECERT_WORKERS="2",
        ECERT_DEMO="false",
        VAULT_ADDR=openbao.addr,
        ECERT_VAULT_ROLE_ID=vault_credentials.role_id,
        ECERT_VAULT_SECRET_ID=vault_credentials.secret_id,
    )
    log = open(tmp_path / "serve.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "ecert.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_ready(port, process)
        assert not (tmp_path / "var" / "openbao").exists()  # no embedded server when VAULT_ADDR is set
        for _ in range(20):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'route="/healthz"' in metrics  # merged across worker processes
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_first_start_seeds_the_demo_once(data_dir: Path, ports: tuple[int, int]) -> None:
    port, vault_port = ports
    process = _serve(data_dir, port, vault_port, demo=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(port, process)
        log = (data_dir.parent / f"serve-{port}.log").read_text()
        assert "ecert demo data" in log and f"{base}/docs" in log
        demo = json.loads((data_dir / "demo.json").read_text())
        assert (data_dir / "demo.json").stat().st_mode & 0o077 == 0
        assert demo["client_secret"] in log and demo["verification_link"].startswith(f"{base}/v/")
        token = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(demo["client_id"], demo["client_secret"])).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(f"{base}/api/v1/licences", headers=headers).json()["items"]
        assert [item["number"] for item in listed] == [demo["licence_number"]]
        pdf = httpx.get(f"{base}/api/v1/licences/{listed[0]['id']}/pdf", headers=headers)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    process = _serve(data_dir, port, vault_port, demo=True)
    try:
        _wait_ready(port, process)
        log = (data_dir.parent / f"serve-{port}.log").read_text()
        assert log.count("ecert demo data") == 1  # not seeded again
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

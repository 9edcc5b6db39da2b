"""The embedded OpenBao of a real ``ecert serve`` (SQLite): killed, sealed or hung beside an admin command,
it comes back and signing works again without restarting ecert; the command never kills it."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest

from bench.harness import Server, licence_row
from tests.reliability.conftest import bao_process, token_for

pytestmark = pytest.mark.slow


def _until(condition: Callable[[], bool], what: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within:.0f} s")
        time.sleep(0.25)


def _ready(server: Server) -> bool:
    try:
        return httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _issues_a_licence(server: Server) -> dict[str, Any]:
    """A sealed licence (Vault signs its QR payload and its PDF) through the service as it runs."""
    token = token_for(server)
    body = {"type_code": "BL", **licence_row(random.Random())}
    response = httpx.post(f"{server.base}/api/v1/licences", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _root_token(server: Server) -> str:
    return str(json.loads((server.data_dir / "openbao" / "init.json").read_text())["root_token"])


def _vault_addr(server: Server) -> str:
    config = (server.data_dir / "openbao" / "config.hcl").read_text()
    return "http://" + re.search(r'address = "(127\.0\.0\.1:\d+)"', config).group(1)  # type: ignore[union-attr]


def test_a_killed_openbao_is_restarted_and_signing_works_again(serve: Any) -> None:
    server = serve()
    first = bao_process(server)
    first.send_signal(signal.SIGKILL)
    _until(lambda: bao_process(server).pid != first.pid and _ready(server), "restarted and ready")
    assert server.process.poll() is None  # the same ecert serve
    assert _issues_a_licence(server)["number"]


def test_a_sealed_openbao_is_unsealed(serve: Any) -> None:
    server = serve()
    pid = bao_process(server).pid
    sealed = httpx.put(f"{_vault_addr(server)}/v1/sys/seal", headers={"X-Vault-Token": _root_token(server)}, timeout=30)
    assert sealed.status_code == 204, sealed.text
    _until(lambda: _ready(server), "unsealed")
    assert bao_process(server).pid == pid
    assert _issues_a_licence(server)["number"]


def test_a_command_beside_the_service_never_kills_its_hung_openbao(serve: Any) -> None:
    server = serve()
    bao = bao_process(server)
    env = {**os.environ, "ECERT_DATA_DIR": str(server.data_dir), "ECERT_DATABASE_URL": serve.database_url,
           "ECERT_LOG_LEVEL": "WARNING"}
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "ECERT_EMBEDDED_VAULT_PORT"):
        env.pop(name, None)
    bao.send_signal(signal.SIGSTOP)  # hung: alive, answers nothing
    try:
        command = subprocess.Popen([sys.executable, "-m", "ecert.cli", "audit", "verify", "--json"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(6)  # the command is waiting on the hung server (the old code SIGKILLed it after 3 s)
        assert bao.is_running() and bao.status() == psutil.STATUS_STOPPED
    finally:
        bao.send_signal(signal.SIGCONT)
    out, err = command.communicate(timeout=180)
    assert command.returncode == 0, out + err
    assert json.loads(out.strip().splitlines()[-1])["ok"] is True
    assert bao.is_running() and bao_process(server).pid == bao.pid  # never killed, never replaced
    _until(lambda: _ready(server), "ready")
    assert _issues_a_licence(server)["number"]

"""Fixtures of the CA tests: the runtime's CertificateAuthority, a department, a live HTTP server."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from ca.service import CertificateAuthority, authority_for
from ecert.db import session_scope
from ecert.runtime import Runtime


@pytest.fixture(scope="session")
def authority(runtime: Runtime) -> CertificateAuthority:
    ca = authority_for(runtime)
    ca.bootstrap()
    return ca


@pytest.fixture
def department(authority: CertificateAuthority, uid: str) -> str:
    code = f"T{uid.upper()}"
    with session_scope(authority.engine) as session:
        authority.add_department(session, code, f"测试局 {uid}", actor="test")
    return code


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def run(*args: str | Path, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60,
                            input=stdin.decode() if stdin else None)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def lint_findings(output: str) -> list[str]:
    """pkilint lines at ERROR or FATAL severity (its exit code counts INFO findings too)."""
    return [line for line in output.splitlines() if "(ERROR)" in line or "(FATAL)" in line]


@pytest.fixture(scope="session")
def live_url(runtime: Runtime) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, for tools that speak HTTP (openssl ocsp)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)

"""Fixtures of the CA tests: the runtime's CertificateAuthority, a department (``live_url`` is in tests/conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.service import CertificateAuthority
from ecert.container import Container
from ecert.db import session_scope
from ecert.runtime import Runtime


@pytest.fixture(scope="session")
def authority(runtime: Runtime, container: Container) -> CertificateAuthority:
    ca = container.ca
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

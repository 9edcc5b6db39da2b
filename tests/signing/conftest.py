"""Signing fixtures: a real PKI with keys in Vault, a sealer over it, and the three checkers."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from keys import TransitKeyStore
from signing.sealer import PadesSealer
from tests.support.licences import DEPARTMENT, DEPARTMENT_NAME, licence  # noqa: F401 - still importable from here
from tests.support.pki import TestPki


@pytest.fixture(scope="session")
def pki(keystore: TransitKeyStore) -> TestPki:
    pki = TestPki(keystore)
    pki.add_department(DEPARTMENT, DEPARTMENT_NAME)
    return pki


@pytest.fixture(scope="session")
def sealer(keystore: TransitKeyStore, pki: TestPki) -> PadesSealer:
    return PadesSealer(keystore, pki, pki.tsa, pki.revocation)


@dataclass(frozen=True)
class PdfSig:
    """poppler's pdfsig with our root in an NSS database."""

    nssdir: Path
    # pdfsig asks the OCSP responder named in the certificate online (it ignores the DSS); the
    # CA's certificates name http://testserver/..., which does not exist in tests.
    no_ocsp: bool = False

    def run(self, pdf: Path) -> str:
        options = ["-no-ocsp"] if self.no_ocsp else []
        result = subprocess.run(
            ["pdfsig", "-nssdir", f"sql:{self.nssdir}", *options, str(pdf)], capture_output=True, text=True, timeout=60
        )
        return result.stdout + result.stderr


@pytest.fixture(scope="session")
def pdfsig(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> PdfSig:
    for tool in ("pdfsig", "certutil", "qpdf"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/install-system-tools.sh")
    nssdir = tmp_path_factory.mktemp("nss")
    root = nssdir / "root.pem"
    root.write_bytes(pki.root_pem())
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdir}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdir}", "-n", "root", "-t", "CT,C,C", "-i", str(root)], check=True)
    return PdfSig(nssdir)


def qpdf_check(pdf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qpdf", "--check", str(pdf)], capture_output=True, text=True, timeout=60)

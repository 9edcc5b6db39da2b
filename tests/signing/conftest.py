"""Signing fixtures: a real PKI with keys in Vault, a sealer over it, and the three checkers."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from certificates.sealing import FieldRow, LicenceDocument
from keys import TransitKeyStore
from signing.sealer import PadesSealer
from tests.signing.pki import TestPki

DEPARTMENT = "ZJSJ01"
DEPARTMENT_NAME = "浙江省市场监督管理局"


@pytest.fixture(scope="session")
def pki(keystore: TransitKeyStore) -> TestPki:
    pki = TestPki(keystore)
    pki.add_department(DEPARTMENT, DEPARTMENT_NAME)
    return pki


@pytest.fixture(scope="session")
def sealer(keystore: TransitKeyStore, pki: TestPki) -> PadesSealer:
    return PadesSealer(keystore, pki, pki.tsa, pki.revocation)


def licence(n: int = 1, **changes: object) -> LicenceDocument:
    document = LicenceDocument(
        licence_id=f"00000000-0000-0000-0000-{n:012d}",
        number=f"BL-{DEPARTMENT}-{n:08d}-7",
        department_code=DEPARTMENT,
        type_code="BL",
        type_version=1,
        type_name_zh="营业执照",
        type_name_en="Business licence",
        holder_kind="enterprise",
        holder_name="杭州示例科技有限公司",
        rows=(
            FieldRow("统一社会信用代码", "Unified social credit code", "91330100MA2XXXXX1X"),
            FieldRow("法定代表人", "Legal representative", "张三"),
            FieldRow("经营范围", "Business scope", "技术开发、技术服务、技术咨询；软件开发；信息系统集成服务。"),
        ),
        valid_from=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        valid_until=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc),
        issued_at=dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.timezone.utc),
        qr=f"https://ecert.example.gov.cn/v/Tok{n:020d}#eyJhbGciOiJFUzI1NiJ9.eyJuIjoiQkwifQ.c2ln",
    )
    return LicenceDocument(**{**document.__dict__, **changes})  # type: ignore[arg-type]


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

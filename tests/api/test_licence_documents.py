"""Issued through the API, every e-licence PDF passes poppler's pdfsig, pyHanko's validator and qpdf."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature
from reportlab.pdfgen import canvas
from ecert.container import Container
from ecert.runtime import Runtime
from tests.api.test_licence_authz import Department
from tests.support.licences import uscc


@pytest.fixture(scope="module")
def nssdir(runtime: Runtime, container: Container, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("nss")
    root = directory / "root.pem"
    root.write_bytes(container.ca.trust_anchors()[0].public_bytes(Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{directory}", "-n", "root", "-t", "CT,C,C", "-i", str(root)], check=True)
    return directory


def _checks(pdf: bytes, container: Container, nssdir: Path, path: Path) -> tuple[str, bool, str]:
    path.write_bytes(pdf)
    pdfsig = subprocess.run(["pdfsig", "-nssdir", f"sql:{nssdir}", "-no-ocsp", str(path)], capture_output=True, text=True,
                            timeout=60)
    root = asn1_x509.Certificate.load(container.ca.trust_anchors()[0].public_bytes(Encoding.DER))
    settings = {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "require"}
    trusted = True
    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        dss = DocumentSecurityStore.read_dss(reader)
        for signature in reader.embedded_regular_signatures:
            status = validate_pdf_signature(signature, dss.as_validation_context(settings),
                                            ts_validation_context=dss.as_validation_context(settings))
            trusted &= bool(status.bottom_line and status.intact and status.trusted and status.timestamp_validity
                            and status.timestamp_validity.trusted)
    except Exception:  # noqa: BLE001  # an altered file may not even parse: that is a failed check
        trusted = False
    qpdf = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=60)
    return pdfsig.stdout + pdfsig.stderr, trusted, qpdf.stdout if qpdf.returncode == 0 else "qpdf failed: " + qpdf.stderr


def test_an_issued_licence_pdf_passes_three_independent_checks(client: TestClient, runtime: Runtime, uid: str,
                                                               nssdir: Path, tmp_path: Path) -> None:
    dept = Department(client, runtime, f"P{uid.upper()}")
    pdf = client.get(f"/api/v1/licences/{dept.licence_id}/pdf", headers=dept.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pdfsig, trusted, qpdf = _checks(pdf.content, client.app.state.container, nssdir, tmp_path / "licence.pdf")
    assert "Signature is Valid." in pdfsig and "Certificate is Trusted." in pdfsig, pdfsig
    assert trusted
    assert "No syntax or stream encoding errors" in qpdf

    altered = bytearray(pdf.content)
    position = altered.find(b"/Contents", len(altered) // 3)
    altered[position - 40] ^= 0x01  # one byte inside the signed range
    pdfsig, trusted, _ = _checks(bytes(altered), client.app.state.container, nssdir, tmp_path / "altered.pdf")
    assert "Signature is Valid." not in pdfsig and not trusted


def _own_pdf() -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "Department-made permit")
    page.save()
    return buffer.getvalue()


def test_a_department_pdf_is_checked_and_sealed(client: TestClient, runtime: Runtime, uid: str, nssdir: Path,
                                                tmp_path: Path) -> None:
    dept = Department(client, runtime, f"U{uid.upper()}")
    data = ('{"type_code": "BL", "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": "%s"},'
            ' "fields": {"company": "示例有限公司", "capital": 1}}' % uscc())
    headers = {**dept.headers, "Idempotency-Key": f"own-{uid}"}
    own = _own_pdf()
    created = client.post("/api/v1/licences/with-document", data={"data": data},
                          files={"file": ("permit.pdf", own, "application/pdf")}, headers=headers)
    assert created.status_code == 201, created.text
    again = client.post("/api/v1/licences/with-document", data={"data": data},
                        files={"file": ("permit.pdf", own, "application/pdf")}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]  # a retry, not a duplicate
    pdf = client.get(f"/api/v1/licences/{created.json()['id']}/pdf", headers=dept.headers).content
    assert pdf.startswith(own[:8]) and len(pdf) > len(own)  # the department's document plus the seal revision
    pdfsig, trusted, qpdf = _checks(pdf, client.app.state.container, nssdir, tmp_path / "own.pdf")
    assert "Signature is Valid." in pdfsig and "Certificate is Trusted." in pdfsig and trusted, pdfsig

    for i, bad in enumerate((b"not a pdf", _own_pdf()[:200], b"%PDF-1.7\n" + b"0" * 1000)):
        refused = client.post("/api/v1/licences/with-document", data={"data": data},
                              files={"file": ("x.pdf", bad, "application/pdf")},
                              headers={**dept.headers, "Idempotency-Key": f"bad-{i}-{uid}"})
        assert refused.status_code == 422 and refused.json()["type"].endswith("/invalid-pdf"), refused.text
    broken = client.post("/api/v1/licences/with-document", data={"data": '{"type_code": 5}'},
                         files={"file": ("x.pdf", _own_pdf(), "application/pdf")},
                         headers={**dept.headers, "Idempotency-Key": f"broken-{uid}"})
    assert broken.status_code == 422
    listed = client.get("/api/v1/licences", headers=dept.headers).json()["items"]
    assert len(listed) == 2  # the setup licence and the sealed upload: refused uploads left nothing behind


def test_a_bulk_job_seals_every_row(client: TestClient, runtime: Runtime, uid: str, nssdir: Path, tmp_path: Path) -> None:
    dept = Department(client, runtime, f"K{uid.upper()}")
    rows = [{"holder": {"kind": "enterprise", "name": f"批量公司{i}", "id_number": uscc()},
             "fields": {"company": f"批量公司{i}", "capital": i}} for i in range(6)]
    job = client.post("/api/v1/bulk-jobs", json={"type_code": "BL", "rows": rows},
                      headers={**dept.headers, "Idempotency-Key": f"bulk-{uid}"})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while (state := client.get(f"/api/v1/bulk-jobs/{job.json()['id']}", headers=dept.headers).json())["status"] not in ("completed", "cancelled"):
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state["status"] == "completed" and state["succeeded"] == 6, state
    items = client.get("/api/v1/licences", headers=dept.headers).json()["items"]
    assert len(items) == 7
    pdf = client.get(f"/api/v1/licences/{items[0]['id']}/pdf", headers=dept.headers).content
    pdfsig, trusted, _ = _checks(pdf, client.app.state.container, nssdir, tmp_path / "bulk.pdf")
    assert "Signature is Valid." in pdfsig and trusted

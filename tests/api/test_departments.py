"""Departments and seal certificates over HTTP: admins manage them, a department only reads its own."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from ecert.runtime import Runtime
from tests.identity.conftest import bearer, new_client, token_for


def _admin(client: TestClient, runtime: Runtime) -> dict[str, str]:
    return bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))


def test_an_admin_registers_a_department_with_a_seal_and_revokes_it(client: TestClient, runtime: Runtime, uid: str) -> None:
    admin = _admin(client, runtime)
    code = f"D{uid.upper()}"
    created = client.post("/api/v1/departments", json={"code": code, "name": "民政厅", "name_en": "Civil Affairs"}, headers=admin)
    assert created.status_code == 201, created.text
    seal = created.json()["seal"]
    assert seal["profile"] == "seal" and seal["department"] == code
    again = client.post("/api/v1/departments", json={"code": code, "name": "民政厅"}, headers=admin)
    assert again.status_code == 409 and again.json()["type"].endswith("/duplicate-department")

    renewed = client.post(f"/api/v1/departments/{code}/seals", headers=admin)
    assert renewed.status_code == 201 and renewed.json()["key"].endswith(":v2")
    listed = client.get(f"/api/v1/departments/{code}/seals", headers=admin).json()["items"]
    assert [item["serial"] for item in listed] == [renewed.json()["serial"], seal["serial"]]

    revoked = client.post(f"/api/v1/certificates/{seal['serial']}/revoke", json={"reason": "superseded"}, headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revocation_reason"] == "superseded"
    twice = client.post(f"/api/v1/certificates/{seal['serial']}/revoke", json={"reason": "superseded"}, headers=admin)
    assert twice.status_code == 409 and twice.json()["type"].endswith("/certificate-already-revoked")
    bad = client.post(f"/api/v1/certificates/{renewed.json()['serial']}/revoke", json={"reason": "bored"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-revocation-reason")
    crl = x509.load_der_x509_crl(client.get("/pki/crl/issuing-1.crl").content)
    assert crl.get_revoked_certificate_by_serial_number(int(seal["serial"], 16)) is not None


def test_departments_cannot_manage_seals(client: TestClient, runtime: Runtime, uid: str) -> None:
    admin = _admin(client, runtime)
    mine, theirs = f"M{uid.upper()}", f"O{uid.upper()}"
    for code in (mine, theirs):
        assert client.post("/api/v1/departments", json={"code": code, "name": code}, headers=admin).status_code == 201
    dept = bearer(token_for(client, new_client(runtime, mine, ["licences:read", "licences:manage", "types:manage"])))
    assert client.get(f"/api/v1/departments/{mine}/seals", headers=dept).status_code == 200
    assert client.get(f"/api/v1/departments/{theirs}/seals", headers=dept).status_code == 403
    assert client.post("/api/v1/departments", json={"code": f"X{uid.upper()}", "name": "x"}, headers=dept).status_code == 403
    assert client.post(f"/api/v1/departments/{mine}/seals", headers=dept).status_code == 403
    serial = client.get(f"/api/v1/departments/{mine}/seals", headers=dept).json()["items"][0]["serial"]
    assert client.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"}, headers=dept).status_code == 403
    assert client.get("/api/v1/departments").status_code == 401


def test_a_csr_is_certified_and_a_bad_one_refused(client: TestClient, runtime: Runtime, uid: str) -> None:
    admin = _admin(client, runtime)
    code = f"C{uid.upper()}"
    assert client.post("/api/v1/departments", json={"code": code, "name": code}, headers=admin).status_code == 201
    key = ec.generate_private_key(ec.SECP256R1())  # the department's own HSM key, in real life
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    headers = {**admin, "content-type": "application/pkcs10"}
    response = client.post(f"/api/v1/departments/{code}/seals/csr", content=csr, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["key"] == "external:v0"
    bad = client.post(f"/api/v1/departments/{code}/seals/csr", content=b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----",
                      headers=headers)
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-csr")


def test_the_key_history_shows_windows_and_compromise_dates(client: TestClient, runtime: Runtime, uid: str) -> None:
    admin = _admin(client, runtime)
    code = f"H{uid.upper()}"
    first = client.post("/api/v1/departments", json={"code": code, "name": code}, headers=admin).json()["seal"]
    client.post(f"/api/v1/departments/{code}/seals", headers=admin)
    compromised = "2026-01-01T00:00:00+00:00"
    revoked = client.post(f"/api/v1/certificates/{first['serial']}/revoke",
                          json={"reason": "keyCompromise", "invalidity_date": compromised}, headers=admin)
    assert revoked.status_code == 200, revoked.text
    history = client.get("/pki/key-history")
    assert history.status_code == 200
    mine = [s for s in history.json()["seals"] if s["department"] == code]
    assert [s["kid"] for s in mine] == [f"seal-{code.lower()}:v1", f"seal-{code.lower()}:v2"]
    assert mine[0]["reason"] == "keyCompromise" and mine[0]["invalidity_date"].startswith("2026-01-01")
    assert mine[1]["revoked_at"] is None and mine[1]["not_after"] > mine[1]["not_before"]
    assert all(k["kid"].startswith("token-signing-v") for k in history.json()["token_keys"])

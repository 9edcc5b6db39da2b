"""The holder downloads their own sealed PDF from the portal through the configured blob store, hash checked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ecert.runtime import Runtime
from tests.support.services import services_for
from tests.api.test_enterprise_agents import _register
from tests.api.test_licence_authz import Department, issue


@pytest.fixture(scope="module")
def files_client(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = runtime.settings.model_copy(update={"blob_store": "filesystem",
                                                   "blob_dir": tmp_path_factory.mktemp("blobs")})
    files_runtime = Runtime(settings=settings, engine=runtime.engine, keystore=runtime.keystore)
    with TestClient(create_app(services_for(files_runtime)), raise_server_exceptions=False) as client:
        yield client


def test_the_holder_downloads_their_pdf_from_the_filesystem_store(files_client: TestClient, uid: str) -> None:
    runtime: Runtime = files_client.app.state.runtime  # type: ignore[attr-defined]
    holder = _register(files_client, "enterprise")
    department = Department(files_client, runtime, f"P{uid.upper()}")
    issued = issue(files_client, department.headers, "BL",
                   holder={"kind": "enterprise", "name": "广州经办示例有限公司", "id_number": holder.id_number})
    assert issued.status_code == 201, issued.text
    licence = issued.json()
    stored = list(Path(runtime.settings.blob_dir).rglob(f"{licence['id']}.pdf"))
    assert len(stored) == 1  # the PDF lives in the files, not in the database

    pdf = files_client.get(f"/portal/licences/{licence['id']}.pdf", cookies=holder.cookies)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == stored[0].read_bytes()
    assert hashlib.sha256(pdf.content).hexdigest() == licence["pdf"]["sha256"]

    damaged = bytearray(pdf.content)
    damaged[len(damaged) // 2] ^= 0x01
    stored[0].write_bytes(bytes(damaged))
    refused = files_client.get(f"/portal/licences/{licence['id']}.pdf", cookies=holder.cookies)
    assert refused.status_code == 500 and refused.content != bytes(damaged)  # a damaged file is never served

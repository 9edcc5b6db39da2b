"""Issuance admission: past a worker's limit a request is refused at once, truthfully, and its retry issues it."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from certificates.models import Licence
from certificates.service import LicenceService
from ecert.container import Container
from ecert.runtime import Runtime
from tests.api.test_licence_authz import Department
from tests.certificates.conftest import uscc


def _one_place(container: Container) -> LicenceService:
    """The container's licence service, but admitting one issuance at a time."""
    return LicenceService(engine=container.engine, keystore=container.runtime.keystore, clock=container.clock,
                          blobs=container.blobs, seal_keys=container.ca, sealer=container.sealer,
                          public_url=container.settings.public_url, queue_limit=1, concurrency=1)


def _post(client: TestClient, department: Department, key: str, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/licences", json=body, headers={**department.headers, "Idempotency-Key": key})


def _licences_with(runtime: Runtime, department: str, key: str) -> int:
    with Session(runtime.engine) as session:
        return len(session.exec(select(Licence).where(Licence.department_code == department,
                                                      Licence.idempotency_key == key)).all())


def test_an_issuance_past_the_limit_is_refused_at_once_and_its_retry_issues_it(
        client: TestClient, runtime: Runtime, swap: Any, uid: str) -> None:
    department = Department(client, runtime, f"Q{uid.upper()}")
    service = _one_place(client.app.state.container)  # type: ignore[attr-defined]
    swap(client.app, licences=service)
    body = {"type_code": "BL", "holder": {"kind": "enterprise", "name": "示例有限公司", "id_number": uscc()},
            "fields": {"company": "示例有限公司", "capital": 100}}
    first_key, second_key = uuid.uuid4().hex, uuid.uuid4().hex
    second = {**body, "holder": {**body["holder"], "id_number": uscc()}}
    service.grouped._batches.acquire()  # noqa: SLF001 - the one batch place is taken: the first request waits
    answers: dict[str, Any] = {}
    waiting = threading.Thread(target=lambda: answers.update(first=_post(client, department, first_key, body)))
    waiting.start()
    try:
        deadline = time.monotonic() + 30
        while service.grouped.in_progress < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.grouped.in_progress == 1
        refused = _post(client, department, second_key, second)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "/problems/issuance-busy"
        assert "nothing was changed" in refused.json()["detail"]
        assert _licences_with(runtime, department.code, second_key) == 0  # the answer was true
    finally:
        service.grouped._batches.release()  # noqa: SLF001
        waiting.join(timeout=60)
    assert answers["first"].status_code == 201, answers["first"].text
    retried = _post(client, department, second_key, second)  # as the problem says: the same key, after Retry-After
    assert retried.status_code == 201, retried.text
    assert _licences_with(runtime, department.code, second_key) == 1
    assert service.grouped.in_progress == 0 and service.grouped.refused == 1

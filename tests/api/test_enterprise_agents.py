"""Enterprise agents in the portal: the enterprise adds (by ID number or account id) and removes agents; an agent
reads the enterprise's e-licences read-only; strangers and removed agents cannot; every step is audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from audit.models import AuditEvent
from ecert.db import session_scope
from ecert.runtime import Runtime
from tests.api.test_licence_authz import Department, issue
from tests.identity.conftest import PASSWORD, person_id, phone_number, uscc


@dataclass(frozen=True)
class Portal:
    id_number: str
    cookie: str

    @property
    def cookies(self) -> dict[str, str]:
        return {"ecert_session": self.cookie}


@pytest.fixture(autouse=True)
def generous_limits(monkeypatch: pytest.MonkeyPatch, client: TestClient, runtime: Runtime) -> Iterator[None]:
    client.cookies.clear()
    yield
    client.cookies.clear()


def _register(client: TestClient, kind: str = "person") -> Portal:
    id_number = uscc() if kind == "enterprise" else person_id()
    form = {"name": "广州经办示例有限公司" if kind == "enterprise" else "张经办", "id_number": id_number,
            "phone": phone_number(), "password": PASSWORD, "kind": kind, "legal_representative": "李法人"}
    response = client.post("/portal/register", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return Portal(id_number, response.cookies["ecert_session"])


def _events(engine: Engine, start: int, action: str) -> list[AuditEvent]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEvent).where(col(AuditEvent.seq) > start, AuditEvent.action == action)
                                 .order_by(col(AuditEvent.seq))))


def _last_seq(engine: Engine) -> int:
    with session_scope(engine) as session:
        return max(session.exec(select(AuditEvent.seq)).all() or [0])


@pytest.fixture
def world(client: TestClient, runtime: Runtime, uid: str) -> dict[str, object]:
    enterprise, agent, stranger = _register(client, "enterprise"), _register(client), _register(client)
    department = Department(client, runtime, f"G{uid.upper()}")
    licence = issue(client, department.headers, "BL", holder={"kind": "enterprise", "name": "广州经办示例有限公司",
                                                              "id_number": enterprise.id_number})
    assert licence.status_code == 201, licence.text
    return {"enterprise": enterprise, "agent": agent, "stranger": stranger, "licence": licence.json()}


def _add(client: TestClient, enterprise: Portal, reference: str) -> object:
    return client.post("/portal/agents", data={"person": reference}, cookies=enterprise.cookies, follow_redirects=False)


def test_agent_added_by_id_number_reads_the_enterprises_licences(client: TestClient, engine: Engine,
                                                                 world: dict[str, object]) -> None:
    enterprise, agent, stranger = world["enterprise"], world["agent"], world["stranger"]
    licence: dict[str, str] = world["licence"]  # type: ignore[assignment]
    assert isinstance(enterprise, Portal) and isinstance(agent, Portal) and isinstance(stranger, Portal)
    start = _last_seq(engine)
    added = _add(client, enterprise, agent.id_number)
    assert added.status_code == 303 and added.headers["location"] == "/portal/agents"  # type: ignore[attr-defined]
    page = client.get("/portal/agents", cookies=enterprise.cookies)
    assert page.status_code == 200 and "张经办" in page.text
    assert agent.id_number not in page.text and agent.id_number[:2] + "*" * 14 + agent.id_number[-2:] in page.text
    agent_id = re.search(r'/portal/agents/(acc_[0-9a-f]+)/remove', page.text).group(1)  # type: ignore[union-attr]
    [event] = _events(engine, start, "identity.account.agent-add")
    assert event.details == {"agent": f"account:{agent_id}"} and agent.id_number not in str(event.details)

    acting = client.get("/portal/acting", cookies=agent.cookies)
    enterprise_id = re.search(r'href="/portal/acting/(acc_[0-9a-f]+)"', acting.text).group(1)  # type: ignore[union-attr]
    assert event.target == f"account:{enterprise_id}"
    listed = client.get(f"/portal/acting/{enterprise_id}", cookies=agent.cookies)
    assert listed.status_code == 200 and licence["number"] in listed.text
    pdf = client.get(f"/portal/acting/{enterprise_id}/licences/{licence['id']}.pdf", cookies=agent.cookies)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    acts = _events(engine, start, "identity.account.agent-act")
    assert [(e.actor, e.details["read"]) for e in acts] == [(f"account:{agent_id}", "licences"), (f"account:{agent_id}", "licence")]

    # an unrelated person: the enterprise does not exist for them
    for url in (f"/portal/acting/{enterprise_id}", f"/portal/acting/{enterprise_id}/licences/{licence['id']}.pdf"):
        refused = client.get(url, cookies=stranger.cookies)
        assert refused.status_code == 404 and licence["number"] not in refused.text
    assert "广州经办示例有限公司" not in client.get("/portal/acting", cookies=stranger.cookies).text

    # removal takes effect at once
    removed = client.post(f"/portal/agents/{agent_id}/remove", cookies=enterprise.cookies, follow_redirects=False)
    assert removed.status_code == 303
    assert _events(engine, start, "identity.account.agent-remove")[0].details == {"agent": f"account:{agent_id}"}
    assert client.get(f"/portal/acting/{enterprise_id}", cookies=agent.cookies).status_code == 404
    assert client.get(f"/portal/acting/{enterprise_id}/licences/{licence['id']}.pdf", cookies=agent.cookies).status_code == 404
    assert "no-agents" in client.get("/portal/agents", cookies=enterprise.cookies).text
    again = client.post(f"/portal/agents/{agent_id}/remove", cookies=enterprise.cookies)
    assert again.status_code == 404


def test_add_by_account_id_and_unknown_people(client: TestClient, world: dict[str, object]) -> None:
    enterprise, agent = world["enterprise"], world["agent"]
    assert isinstance(enterprise, Portal) and isinstance(agent, Portal)
    assert _add(client, enterprise, agent.id_number).status_code == 303  # type: ignore[attr-defined]
    agent_id = re.search(r'/portal/agents/(acc_[0-9a-f]+)/remove',  # type: ignore[union-attr]
                         client.get("/portal/agents", cookies=enterprise.cookies).text).group(1)
    client.post(f"/portal/agents/{agent_id}/remove", cookies=enterprise.cookies)
    assert _add(client, enterprise, agent_id).status_code == 303  # type: ignore[attr-defined]
    assert agent_id in client.get("/portal/agents", cookies=enterprise.cookies).text

    unknown = person_id()
    missing = _add(client, enterprise, unknown)
    assert missing.status_code == 404 and unknown not in missing.text  # type: ignore[attr-defined]
    assert _add(client, enterprise, "not an id").status_code == 422  # type: ignore[attr-defined]
    assert _add(client, enterprise, enterprise.id_number).status_code == 422  # type: ignore[attr-defined]  # not a person


def test_account_kinds_keep_to_their_pages(client: TestClient, world: dict[str, object]) -> None:
    enterprise, agent = world["enterprise"], world["agent"]
    assert isinstance(enterprise, Portal) and isinstance(agent, Portal)
    assert client.get("/portal/agents", cookies=agent.cookies).status_code == 403
    assert _add(client, agent, person_id()).status_code == 403  # type: ignore[attr-defined]
    assert client.get("/portal/acting", cookies=enterprise.cookies).status_code == 403
    assert client.get("/portal/agents", follow_redirects=False).headers["location"].startswith("/portal/login")
    assert 'href="/portal/agents"' in client.get("/portal", cookies=enterprise.cookies).text
    assert 'href="/portal/acting"' in client.get("/portal", cookies=agent.cookies).text
    english = client.get("/portal/agents?lang=en", cookies=enterprise.cookies)
    assert "Authorised agents" in english.text and 'name="viewport"' in english.text

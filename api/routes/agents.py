"""Portal pages for enterprise agents: the enterprise lists, adds and removes its agents; an agent sees the
enterprises they act for and reads (lists, downloads) those enterprises' e-licences, read-only.

Domain rules and auditing live in :mod:`identity.agents`; each page checks the portal session
and the account kind, and every act-for request checks the agent row again (removal is immediate).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import PiiDep, RuntimeDep, SessionDep, container_of
from api.problems import register_problem_type
from api.routes.portal import licence_pdf_response, portal_session
from api.web import render, see_other
from ecert.errors import EcertError
from ecert.runtime import Runtime
from identity import accounts, agents
from identity.models import Account

__all__ = ["router"]

register_problem_type(agents.NotAnAgent.slug, agents.NotAnAgent.title, (agents.NotAnAgent.__doc__ or "").strip())

router = APIRouter(tags=["portal"], include_in_schema=False)


def _account(request: Request, session: Session, runtime: Runtime, kind: str) -> Account | Response:
    """The logged-in account if it is of ``kind``; else the login redirect or a 403 page."""
    current = portal_session(request, session, runtime)
    if current is None:
        return see_other("/portal/login?next=" + request.url.path)
    row = accounts.get_account(session, current.account_id)
    if row.kind != kind:
        detail = "only an enterprise account manages agents" if kind == "enterprise" else "only a person acts for an enterprise"
        return render(request, "message.html", status_code=403, detail=detail)
    return row


def _agents_page(request: Request, session: Session, runtime: Runtime, enterprise: Account, *, status_code: int = 200,
                 error: str | None = None) -> Response:
    listed = agents.list_agents(session, container_of(request).pii, enterprise.id)
    return render(request, "agents.html", status_code=status_code, enterprise=enterprise, agents=listed, error=error)


@router.get("/portal/agents")
def agents_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    enterprise = _account(request, session, runtime, "enterprise")
    if isinstance(enterprise, Response):
        return enterprise
    return _agents_page(request, session, runtime, enterprise)


@router.post("/portal/agents")
def add_agent(request: Request, session: SessionDep, runtime: RuntimeDep, pii: PiiDep, person: Annotated[str, Form(max_length=64)]) -> Response:
    enterprise = _account(request, session, runtime, "enterprise")
    if isinstance(enterprise, Response):
        return enterprise
    try:
        agents.add_agent_by_reference(session, pii, enterprise_id=enterprise.id, reference=person,
                                      now=runtime.clock.now())
    except EcertError as exc:  # the detail masks the ID number; the form is not filled in again
        return _agents_page(request, session, runtime, enterprise, status_code=exc.status, error=exc.detail)
    return see_other("/portal/agents")


@router.post("/portal/agents/{person_id}/remove")
def remove_agent(request: Request, session: SessionDep, runtime: RuntimeDep, person_id: str) -> Response:
    enterprise = _account(request, session, runtime, "enterprise")
    if isinstance(enterprise, Response):
        return enterprise
    try:
        agents.remove_agent(session, enterprise_id=enterprise.id, person_id=person_id, actor=f"account:{enterprise.id}",
                            now=runtime.clock.now())
    except agents.NotAnAgent as exc:
        return _agents_page(request, session, runtime, enterprise, status_code=404, error=exc.detail)
    return see_other("/portal/agents")


@router.get("/portal/acting")
def acting_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    person = _account(request, session, runtime, "person")
    if isinstance(person, Response):
        return person
    return render(request, "acting.html", enterprises=agents.enterprises_for(session, person.id), enterprise=None)


@router.get("/portal/acting/{enterprise_id}")
def acting_licences(request: Request, session: SessionDep, runtime: RuntimeDep, enterprise_id: str) -> Response:
    person = _account(request, session, runtime, "person")
    if isinstance(person, Response):
        return person
    try:
        enterprise, licences = agents.enterprise_licences(session, person_id=person.id,
                                                          enterprise_id=enterprise_id, now=runtime.clock.now())
    except agents.NotAnAgent as exc:
        return render(request, "message.html", status_code=404, detail=exc.detail)
    return render(request, "acting.html", enterprises=agents.enterprises_for(session, person.id), enterprise=enterprise,
                  licences=licences)


@router.get("/portal/acting/{enterprise_id}/licences/{licence_id}.pdf")
def acting_pdf(request: Request, session: SessionDep, runtime: RuntimeDep, enterprise_id: str, licence_id: str) -> Response:
    person = _account(request, session, runtime, "person")
    if isinstance(person, Response):
        return person
    try:
        _, found = agents.enterprise_licences(session, person_id=person.id, enterprise_id=enterprise_id,
                                              now=runtime.clock.now(), licence_id=licence_id)
    except agents.NotAnAgent as exc:
        return render(request, "message.html", status_code=404, detail=exc.detail)
    return licence_pdf_response(request, session, found[0] if found else None)

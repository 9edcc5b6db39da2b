"""The counter console (server-rendered) for staff in a service hall.

A staff member logs in (username and password; their session is the hall session), scans or
pastes an applicant's counter QR (a barcode scanner types it into the field), or finds an
applicant without a phone by the ID document they check in person; then records the in-person
check, the applicant's consent, and reads the applicant's e-licences for this visit only, for a
declared purpose (each licence shown goes into the holder's "who checked" history).
Citizen sessions are never accepted here, nor staff sessions in the portal.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import PiiDep, RuntimeDep, SessionDep, TokensDep, container_of
from api.problems import register_problem_type
from api.routes.portal import admitted, client_ip, portal_session, rate_limited
from api.web import STAFF_COOKIE, render, see_other, set_cookie
from certificates.access_log import PURPOSES
from ecert.errors import EcertError
from ecert.runtime import Runtime
from identity import accounts, counter, login
from identity.models import Account, LoginSession, StaffMember

__all__ = ["router"]

for _error in (counter.QrRejected, counter.VisitClosed, counter.NoConsent, counter.NotStaff):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

router = APIRouter(tags=["counter"], include_in_schema=False)


def _staff(request: Request, session: Session, runtime: RuntimeDep) -> tuple[LoginSession, StaffMember] | None:
    current = portal_session(request, session, runtime, staff=True)
    if current is None:
        return None
    member = session.get(StaffMember, current.account_id)
    return (current, member) if member is not None else None


@router.get("/counter/login")
def login_page(request: Request) -> Response:
    return render(request, "counter_login.html")


@router.post("/counter/login")
async def login_submit(request: Request, username: Annotated[str, Form(max_length=64)],
                       password: Annotated[str, Form(max_length=256)]) -> Response:
    return await admitted(request, lambda session, runtime: _password_step(request, session, runtime, username, password),
                          "counter_login.html")


def _password_step(request: Request, session: Session, runtime: Runtime, username: str, password: str) -> Response:
    if (limited := rate_limited(request)) is not None:
        return limited
    try:
        result = login.login_password(session, None, login_name=username, password=password, now=runtime.clock.now(),
                                      ip=client_ip(request), user_agent=request.headers.get("user-agent", ""), staff=True)
    except (login.LoginFailed, login.LoginLocked) as exc:
        session.commit()
        return render(request, "counter_login.html", status_code=exc.status, error=exc.detail)
    if result.needs_second_factor:
        session.rollback()
        return render(request, "counter_login.html", status_code=401, error="staff accounts log in with a password here")
    session.commit()
    response = see_other("/counter")
    set_cookie(request, response, STAFF_COOKIE, result.session.cookie, max_age=10 * 3600)
    return response


@router.post("/counter/logout")
def logout(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    staff = _staff(request, session, runtime)
    if staff is not None:
        login.revoke_session(session, staff[0].account_id, staff[0].id, actor=f"staff:{staff[0].account_id}",
                             now=runtime.clock.now())
        session.commit()
    response = see_other("/counter/login")
    set_cookie(request, response, STAFF_COOKIE, None)
    return response


@router.get("/counter")
def console(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    staff = _staff(request, session, runtime)
    if staff is None:
        return see_other("/counter/login")
    account = session.get(Account, staff[0].account_id)
    return render(request, "counter.html", staff=account, member=staff[1])


def _fail(request: Request, session: Session, exc: EcertError, staff: tuple[LoginSession, StaffMember]) -> Response:
    session.commit()  # keep the refusal's audit event (a replayed QR, a document mismatch)
    account = session.get(Account, staff[0].account_id)
    return render(request, "counter.html", status_code=exc.status, error=exc.detail, staff=account, member=staff[1])


@router.post("/counter/scan")
def scan(request: Request, session: SessionDep, runtime: RuntimeDep, tokens: TokensDep, qr: Annotated[str, Form(max_length=4096)]) -> Response:
    staff = _staff(request, session, runtime)
    if staff is None:
        return see_other("/counter/login")
    try:
        visit = counter.start_visit_by_qr(session, tokens, qr, staff[0], now=runtime.clock.now())
    except EcertError as exc:
        return _fail(request, session, exc, staff)
    session.commit()
    return see_other(f"/counter/visits/{visit.id}")


@router.post("/counter/walk-in")
def walk_in(request: Request, session: SessionDep, runtime: RuntimeDep, pii: PiiDep, document_number: Annotated[str, Form(max_length=32)],
            document_type: Annotated[str, Form(max_length=32)] = "resident-id") -> Response:
    staff = _staff(request, session, runtime)
    if staff is None:
        return see_other("/counter/login")
    try:
        visit = counter.start_visit_by_document(session, pii, staff[0], document_type=document_type,
                                                document_number=document_number, now=runtime.clock.now())
    except EcertError as exc:
        session.rollback()
        return _fail(request, session, exc, staff)
    session.commit()
    return see_other(f"/counter/visits/{visit.id}")


@router.get("/counter/visits/{visit_id}")
def visit_page(request: Request, session: SessionDep, runtime: RuntimeDep, visit_id: str, show: bool = False,
               purpose: Annotated[str | None, Query(max_length=400)] = None) -> Response:
    staff = _staff(request, session, runtime)
    if staff is None:
        return see_other("/counter/login")
    now = runtime.clock.now()
    try:
        visit = counter.get_visit(session, visit_id, staff[0], now=now)
        licences = counter.visit_licences(session, visit_id, staff[0], purpose=purpose,
                                          now=now) if show else None
    except EcertError as exc:
        return _fail(request, session, exc, staff)
    session.commit()
    applicant = accounts.view(accounts.get_account(session, visit.account_id))
    return render(request, "visit.html", visit=visit, applicant=applicant, licences=licences, member=staff[1],
                  purposes=[p for p in PURPOSES if p != "other"], purpose=purpose or "service")


def _visit_action(request: Request, session: Session, runtime: Runtime, visit_id: str, action: str, purpose: str = "",
                  **form: str) -> Response:
    staff = _staff(request, session, runtime)
    if staff is None:
        return see_other("/counter/login")
    now = runtime.clock.now()
    try:
        if action == "proof":
            counter.proof_in_person(session, container_of(request).pii, visit_id, staff[0], now=now, **form)
        elif action == "consent":
            counter.record_consent(session, visit_id, staff[0], now=now)
        else:
            counter.end_visit(session, visit_id, staff[0], now=now)
            session.commit()
            return see_other("/counter")
    except EcertError as exc:
        if isinstance(exc, accounts.DocumentMismatch):
            session.commit()  # the mismatch's audit event
        else:
            session.rollback()
        return render(request, "message.html", status_code=exc.status, detail=exc.detail)
    session.commit()
    shown = "?" + urlencode({"show": 1, "purpose": purpose}) if action == "consent" and purpose else ""
    return see_other(f"/counter/visits/{visit_id}{shown}")


@router.post("/counter/visits/{visit_id}/proof")
def proof(request: Request, session: SessionDep, runtime: RuntimeDep, visit_id: str,
          document_number: Annotated[str, Form(max_length=32)], document_type: Annotated[str, Form(max_length=32)] = "resident-id",
          ) -> Response:
    return _visit_action(request, session, runtime, visit_id, "proof", document_number=document_number, document_type=document_type)


@router.post("/counter/visits/{visit_id}/consent")
def consent(request: Request, session: SessionDep, runtime: RuntimeDep, visit_id: str,
            purpose: Annotated[str, Form(max_length=400)] = "") -> Response:
    """Record the applicant's consent; with a purpose chosen, show their licences for it at once."""
    return _visit_action(request, session, runtime, visit_id, "consent", purpose=purpose)


@router.post("/counter/visits/{visit_id}/end")
def end(request: Request, session: SessionDep, runtime: RuntimeDep, visit_id: str) -> Response:
    return _visit_action(request, session, runtime, visit_id, "end")

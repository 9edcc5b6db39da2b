"""The citizen portal (server-rendered): register, log in (password, then TOTP if enrolled), TOTP
enrolment, my e-licences (download, share link), my identity QR for the counter, sessions, history.

Pages call the same domain functions as everything else (:mod:`identity.accounts`,
:mod:`identity.login`); a failed login is answered by re-rendering the form, so the route returns
normally and the failure's audit event and lockout count commit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import PiiDep, RuntimeDep, SessionDep, TokensDep, container_of, get_session
from api.problems import problem_response, register_problem_type
from ecert.ratelimit import TokenBuckets
from api.web import SESSION_COOKIE, STAFF_COOKIE, qr_svg, render, safe_next, see_other, set_cookie
from certificates.blobs import BlobNotFound
from certificates.models import Licence
from ecert.errors import EcertError, NotFound
from ecert.runtime import Runtime
from identity import accounts, counter, login
from identity.admission import LoginBusy
from identity.models import LoginSession

__all__ = ["router", "portal_session", "client_ip", "rate_limited", "licence_pdf_response", "shed", "admitted"]

for _error in (accounts.AccountExists, accounts.UnknownAccount, accounts.WrongCode, accounts.DocumentMismatch,
               login.LoginFailed, login.LoginLocked, login.SessionInvalid, LoginBusy):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

router = APIRouter(tags=["portal"], include_in_schema=False)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def portal_session(request: Request, session: Session, runtime: Runtime, *, staff: bool = False,
                   allow_pending: bool = False) -> LoginSession | None:
    """The citizen's (or, with ``staff=True``, the staff member's) live session from its cookie, else None."""
    value = request.cookies.get(STAFF_COOKIE if staff else SESSION_COOKIE)
    if not value:
        return None
    try:
        return login.resolve_session(session, value, now=runtime.clock.now(), allow_pending=allow_pending, staff=staff)
    except login.SessionInvalid:
        return None


def _to_login(request: Request) -> Response:
    return see_other("/portal/login?next=" + request.url.path)


@router.get("/portal/login")
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return render(request, "login.html", next=safe_next(next, "/portal"))


def rate_limited(request: Request) -> Response | None:
    wait = container_of(request).login_limit.take(client_ip(request))
    if wait:
        response = render(request, "message.html", status_code=429, detail="too many attempts from this address; wait a moment")
        response.headers["Retry-After"] = TokenBuckets.retry_after(wait)
        return response
    return None


def shed(request: Request, exc: LoginBusy, template: str, **context: Any) -> Response:
    """A login refused for load, at once: problem+json for API callers, else the form again saying when to retry."""
    headers = {"Retry-After": str(exc.retry_after)}
    accept = request.headers.get("accept", "")
    if "json" in accept and "text/html" not in accept:
        return problem_response(request, status=exc.status, slug=exc.slug, title=exc.title, detail=exc.detail,
                                headers=headers, retry_after=exc.retry_after)
    response = render(request, template, status_code=exc.status, busy=exc.retry_after, **context)
    response.headers.update(headers)
    return response


PasswordStep = Callable[[Session, Runtime], Response]


async def admitted(request: Request, step: PasswordStep, template: str, **context: Any) -> Response:
    """Run a step that checks or hashes a password if this worker admits one more; else shed it at once.

    Decided on the event loop before anything else (no thread, session, Vault or database), so a shed
    request never waits behind the admitted ones; the step then runs in the thread pool in one transaction.
    """
    runtime: Runtime = request.app.state.runtime
    try:
        with container_of(request).login_admission.admit():
            return await run_in_threadpool(_in_transaction, runtime, step)
    except LoginBusy as exc:
        return shed(request, exc, template, **context)


def _in_transaction(runtime: Runtime, step: PasswordStep) -> Response:
    with contextmanager(get_session)(runtime) as session:
        return step(session, runtime)


@router.post("/portal/login")
async def login_submit(
    request: Request, login_name: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=2000)] = "/portal",  # noqa: A002
) -> Response:
    target = safe_next(next, "/portal")
    return await admitted(request, lambda session, runtime: _password_step(request, session, runtime, login_name, password,
                                                                             target), "login.html", next=target)


def _password_step(request: Request, session: Session, runtime: Runtime, login_name: str, password: str,
                   target: str) -> Response:
    if (limited := rate_limited(request)) is not None:
        return limited
    try:
        result = login.login_password(session, container_of(request).pii, login_name=login_name, password=password,
                                      now=runtime.clock.now(), ip=client_ip(request),
                                      user_agent=request.headers.get("user-agent", ""))
    except (login.LoginFailed, login.LoginLocked) as exc:
        session.commit()  # the failure's audit event and lockout count
        return render(request, "login.html", status_code=exc.status, error=exc.detail, next=target)
    session.commit()  # before answering: FastAPI ends the request's transaction only after the response is sent
    response = see_other(("/portal/login/code?next=" + target) if result.needs_second_factor else target)
    set_cookie(request, response, SESSION_COOKIE, result.session.cookie)
    return response


@router.get("/portal/login/code")
def code_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return render(request, "second_factor.html", next=safe_next(next, "/portal"))


@router.post("/portal/login/code")
def code_submit(
    request: Request, session: SessionDep, runtime: RuntimeDep, pii: PiiDep, code: Annotated[str, Form(max_length=32)],
    next: Annotated[str, Form(max_length=2000)] = "/portal",  # noqa: A002
) -> Response:
    target = safe_next(next, "/portal")
    try:
        ref = login.login_second_factor(session, pii, cookie=request.cookies.get(SESSION_COOKIE, ""), code=code,
                                        now=runtime.clock.now(), ip=client_ip(request),
                                        user_agent=request.headers.get("user-agent", ""))
    except login.SessionInvalid:
        return see_other("/portal/login?next=" + target)
    except (login.LoginFailed, login.LoginLocked) as exc:
        session.commit()
        return render(request, "second_factor.html", status_code=exc.status, error=exc.detail, next=target)
    session.commit()
    response = see_other(target)
    set_cookie(request, response, SESSION_COOKIE, ref.cookie)
    return response


@router.get("/portal/register")
def register_page(request: Request) -> Response:
    return render(request, "register.html")


@router.post("/portal/register")
async def register_submit(
    request: Request, name: Annotated[str, Form(max_length=200)], id_number: Annotated[str, Form(max_length=32)],
    phone: Annotated[str, Form(max_length=32)], password: Annotated[str, Form(max_length=256)],
    kind: Annotated[str, Form()] = "person", legal_representative: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await admitted(request, lambda session, runtime: _register(  # registering hashes the password too
        request, session, runtime, kind, name=name, id_number=id_number, phone=phone, password=password,
        legal_representative=legal_representative), "register.html")


def _register(request: Request, session: Session, runtime: Runtime, kind: str, *, name: str, id_number: str, phone: str,
              password: str, legal_representative: str) -> Response:
    if (limited := rate_limited(request)) is not None:
        return limited
    now, pii = runtime.clock.now(), container_of(request).pii
    try:
        if kind == "enterprise":
            view = accounts.register_enterprise(session, pii, name=name, credit_code=id_number, phone=phone, password=password,
                                                legal_representative=legal_representative, now=now)
        else:
            view = accounts.register_person(session, pii, name=name, id_number=id_number, phone=phone, password=password, now=now)
    except EcertError as exc:
        session.rollback()
        return render(request, "register.html", status_code=exc.status, error=exc.detail)
    account = accounts.get_account(session, view.id)
    ref = login.start_session(session, account, acr=accounts.ACR_PASSWORD, now=now, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent", ""))
    session.commit()
    response = see_other("/portal/totp")
    set_cookie(request, response, SESSION_COOKIE, ref.cookie)
    return response


@router.get("/portal")
def home(request: Request, session: SessionDep, runtime: RuntimeDep, pii: PiiDep) -> Response:
    current = portal_session(request, session, runtime)
    if current is None:
        return _to_login(request)
    pii, now = pii, runtime.clock.now()
    row = accounts.get_account(session, current.account_id)
    id_number = accounts.reveal_id_number(pii, row)
    phone = pii.open_many([row.phone_cipher])[0] if row.phone_cipher else None
    licences = accounts.licences_of(session, row, limit=100)
    return render(request, "home.html", account=accounts.view(row, id_number=id_number, phone=phone), acr=current.acr,
                  licences=licences, sessions=login.list_sessions(session, row.id, now=now), current=current.id,
                  history=login.login_history(session, row.id, limit=20))


@router.get("/portal/totp")
def totp_page(request: Request, session: SessionDep, runtime: RuntimeDep, pii: PiiDep) -> Response:
    current = portal_session(request, session, runtime)
    if current is None:
        return _to_login(request)
    issuer = runtime.settings.public_url.split("//")[-1]
    enrolment = accounts.begin_totp(session, pii, current.account_id, issuer=f"ecert {issuer}")
    return render(request, "enrol.html", qr=qr_svg(enrolment.uri, size=200), secret=enrolment.secret)


@router.post("/portal/totp/confirm")
def totp_confirm(request: Request, session: SessionDep, runtime: RuntimeDep, pii: PiiDep, code: Annotated[str, Form(max_length=32)]) -> Response:
    current = portal_session(request, session, runtime)
    if current is None:
        return _to_login(request)
    try:
        codes = accounts.confirm_totp(session, pii, current.account_id, code, now=runtime.clock.now())
    except EcertError as exc:
        return render(request, "message.html", status_code=exc.status, detail=exc.detail)
    return render(request, "enrol.html", codes=codes)


@router.get("/portal/qr")
def counter_qr(request: Request, session: SessionDep, runtime: RuntimeDep, tokens: TokensDep, share: bool = False) -> Response:
    """My identity QR for a counter; ``share=1`` consents to that visit reading my e-licences."""
    current = portal_session(request, session, runtime)
    if current is None:
        return _to_login(request)
    qr = counter.issue_qr(session, tokens, current, consent=share, now=runtime.clock.now())
    session.commit()
    return render(request, "qr.html", qr=qr_svg(qr.token, size=300), token=qr.token, share=share)


@router.post("/portal/sessions/{session_id}/revoke")
def revoke_session(request: Request, session: SessionDep, runtime: RuntimeDep, session_id: str) -> Response:
    current = portal_session(request, session, runtime)
    if current is None:
        return _to_login(request)
    try:
        login.revoke_session(session, current.account_id, session_id, actor=f"account:{current.account_id}",
                             now=runtime.clock.now())
    except login.SessionInvalid as exc:
        return render(request, "message.html", status_code=404, detail=exc.detail)
    return see_other("/portal")


@router.post("/portal/logout")
def logout(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    current = portal_session(request, session, runtime, allow_pending=True)
    if current is not None:
        login.revoke_session(session, current.account_id, current.id, actor=f"account:{current.account_id}",
                             now=runtime.clock.now())
    response = see_other("/portal/login")
    set_cookie(request, response, SESSION_COOKIE, None)
    return response


@router.get("/portal/licences/{licence_id}.pdf")
def licence_pdf(request: Request, session: SessionDep, runtime: RuntimeDep, licence_id: str) -> Response:
    """The holder's own sealed PDF; anyone else's licence does not exist for them."""
    current = portal_session(request, session, runtime)
    if current is None:
        return _to_login(request)
    licence = accounts.own_licence(session, accounts.get_account(session, current.account_id), licence_id)
    return licence_pdf_response(request, session, licence)


def licence_pdf_response(request: Request, session: Session, licence: Licence | None) -> Response:
    """The sealed PDF of a licence the caller may read (None: a 404 page, same as someone else's licence)."""
    try:
        if licence is None or licence.pdf_blob_key is None:
            raise NotFound("no such licence of yours")
        store = container_of(request).blobs  # the configured store, built once; hash checked
        data = store.get(session, licence.pdf_blob_key, sha256=licence.pdf_sha256)
    except (NotFound, BlobNotFound):
        return render(request, "message.html", status_code=404, detail="no such licence of yours")
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{licence.number}.pdf"', "Cache-Control": "no-store"})

"""Public verification: the page behind every QR code, its JSON twin, PDF upload, the trust bundle.

No authentication needed: anonymous lookups are only counted (``verify.link`` statistics). A caller
that sends a bearer token (a department client, a platform app acting with a person's token,
counter staff) is an identified checker: it must declare ``purpose`` and what the verdict
disclosed is recorded in the holder's access log (:mod:`verify.identified`) before the answer
is sent; it is shown no more than anyone else. Lookups are rate limited per client IP (token bucket; a lookup that finds
nothing costs 5 tokens, so guessing tokens is slow), answers are ``no-store`` and the page sends
no referrer (the token is in its URL).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import VerificationDep
from api.lookups import HEADERS, LOOKUP_ROUTE, answer_for, status_of
from api.problems import problem_response, register_problem_type
from api.security import BearerRequired, Principal, current_principal
from certificates.access_log import Checker, InvalidPurpose, Purpose, parse_purpose
from ecert.container import Verification
from ecert.db import session_scope
from ecert.ratelimit import TokenBuckets
from ecert.runtime import Runtime
from identity import checkers, oidc
from verify.identified import record_verdict
from verify.model import Answer, Verdict
from verify.page import pick_language, render_form, render_page

__all__ = ["router"]

log = logging.getLogger(__name__)
register_problem_type("verification-timeout", "Verification took too long",
                      "The uploaded PDF could not be checked within the time limit; it is probably hostile or broken.")
for _error in (InvalidPurpose, checkers.UnknownChecker):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())
register_problem_type("unsupported-media-type", "Unsupported media type",
                      "Send the PDF as application/pdf or as the file field of multipart/form-data.")

_PDF_COST = 2.0
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


router = APIRouter(tags=["verification"])


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limited(request: Request, svc: Verification, cost: float = 1.0) -> Response | None:
    wait = svc.limiter.take(_client(request), cost)
    return None if wait <= 0 else _too_many(request, wait)


def _too_many(request: Request, wait: float) -> Response:
    return problem_response(request, status=429, slug="rate-limited", title="Too many requests",
                            detail="Too many verification requests from your address; retry later.",
                            headers={"Retry-After": TokenBuckets.retry_after(wait)})


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    if "application/json" not in accept:
        return False
    return "text/html" not in accept or accept.index("application/json") < accept.index("text/html")


async def _lookup(request: Request, svc: Verification, token: str) -> Answer | Response:
    found = await answer_for(svc, _client(request), token)
    return _too_many(request, found) if isinstance(found, float) else found


def _json(answer: Answer, headers: dict[str, str]) -> Response:
    return Response(answer.body, status_code=status_of(answer.outcome), headers=headers, media_type="application/json")


async def _principal(request: Request) -> Principal | None:
    """The caller of an identified check (a bearer token), None when anonymous; 401 for a bad token."""
    if "authorization" not in request.headers:
        return None
    return await current_principal(request)


def _checker(runtime: Runtime, caller: Principal) -> Checker:
    with session_scope(runtime.engine) as session:
        if caller.kind in ("person", "staff") and oidc.is_revoked(session, caller.token_id):
            raise BearerRequired("the access token was revoked")
        return checkers.checker_for(session, kind=caller.kind, subject=caller.subject, client_id=caller.client_id,
                                    department=caller.department)


def _record(runtime: Runtime, verdict: Verdict, checker: Checker, purpose: Purpose, channel: str,
            token: str | None = None) -> None:
    """The disclosure and its audit event, committed before the verdict is answered."""
    with session_scope(runtime.engine) as session:
        record_verdict(session, verdict, checker=checker, purpose=purpose, channel=channel, now=verdict.checked_at,
                       token=token)


async def _identified(request: Request, purpose: str | None) -> tuple[Checker, Purpose] | None:
    caller = await _principal(request)
    if caller is None:
        return None
    declared = parse_purpose(purpose)
    return await run_in_threadpool(_checker, request.app.state.runtime, caller), declared


@router.get("/v/{token}", summary="The verification page behind a QR code (HTML, or JSON by Accept)",
            response_class=HTMLResponse, responses={404: {"description": "no such licence (same page)"}})
async def page(token: str, request: Request, svc: VerificationDep,
               lang: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    answer = await _lookup(request, svc, token)
    if isinstance(answer, Response):
        return answer
    if _wants_json(request):
        return _json(answer, {**HEADERS, "Vary": "Accept"})
    verdict = answer.verdict()
    language = pick_language(lang, request.headers.get("accept-language"))
    html = render_page(verdict, lang=language, self_path=request.url.path)
    headers = {**HEADERS, "Content-Security-Policy": _CSP, "Content-Language": "zh-CN" if language == "zh" else "en",
               "Vary": "Accept, Accept-Language"}
    return HTMLResponse(html, status_code=status_of(verdict.outcome), headers=headers)


_PURPOSE = Query(max_length=400, description="Why an identified caller (bearer token) checks: a purpose code "
                "(service, eligibility, employment, transaction, inspection) or a short free text. Required with a token.")


@router.get(LOOKUP_ROUTE, summary="Verification by token, as JSON (identified with a bearer token and purpose)")
async def verify_token(token: str, request: Request, svc: VerificationDep,
                       purpose: Annotated[str | None, _PURPOSE] = None) -> Response:
    identified = await _identified(request, purpose)
    answer = await _lookup(request, svc, token)
    if isinstance(answer, Response):
        return answer
    if identified is not None:
        await run_in_threadpool(_record, request.app.state.runtime, answer.verdict(), *identified, "api-verify", token)
    return _json(answer, HEADERS)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + 64 * 1024:  # multipart framing on top of the file itself
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _pdf_bytes(request: Request, body: bytes, limit: int) -> bytes | Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/pdf", "application/octet-stream"):
        return body
    if kind == "multipart/form-data":
        request._body = body  # noqa: SLF001 - let Starlette parse the body we already read (and capped)
        try:
            form = await request.form(max_files=1, max_fields=5, max_part_size=limit)
        except Exception as exc:  # noqa: BLE001 - malformed multipart
            return problem_response(request, status=422, slug="invalid-input", title="The request is not valid",
                                    detail=f"cannot read the multipart body: {exc}")
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return problem_response(request, status=422, slug="invalid-input", title="The request is not valid",
                                    detail="send the PDF in a form field named 'file'")
        return await upload.read()
    return problem_response(request, status=415, slug="unsupported-media-type", title="Unsupported media type",
                            detail="send the PDF as application/pdf or multipart/form-data (field 'file')")


@router.post("/api/v1/verify/pdf", summary="Verify a sealed PDF (application/pdf body or multipart field 'file')",
             responses={413: {"description": "larger than max_upload_bytes"}, 429: {"description": "rate limited"}})
async def verify_pdf(request: Request, svc: VerificationDep, purpose: Annotated[str | None, _PURPOSE] = None) -> Response:
    identified = await _identified(request, purpose)
    limited = _limited(request, svc, _PDF_COST)
    if limited is not None:
        return limited
    body = await _read_capped(request, svc.max_upload)
    if body is None:
        return problem_response(request, status=413, slug="payload-too-large", title="Payload too large",
                                detail=f"the upload is larger than {svc.max_upload} bytes")
    data = await _pdf_bytes(request, body, svc.max_upload)
    if isinstance(data, Response):
        return data
    if len(data) > svc.max_upload:
        return problem_response(request, status=413, slug="payload-too-large", title="Payload too large",
                                detail=f"the PDF is larger than {svc.max_upload} bytes")
    try:
        verdict = await asyncio.wait_for(run_in_threadpool(svc.pdf.verify, data), timeout=svc.timeout)
    except TimeoutError:
        return problem_response(request, status=503, slug="verification-timeout", title="Verification took too long",
                                detail="the PDF could not be checked in time", headers={"Retry-After": "60"})
    if identified is not None:
        await run_in_threadpool(_record, request.app.state.runtime, verdict, *identified, "api-pdf")
    return JSONResponse(verdict.to_json(), headers=HEADERS)


_FORM_CSP = _CSP.replace("form-action 'none'", "form-action 'self'")  # the /v/ policy; the form may post to itself
_FORM_PATH = "/verify"


def _html(body: str, language: str, status: int = 200, *, form: bool = False) -> HTMLResponse:
    headers = {**HEADERS, "Content-Security-Policy": _FORM_CSP if form else _CSP,
               "Content-Language": "zh-CN" if language == "zh" else "en", "Vary": "Accept-Language"}
    return HTMLResponse(body, status_code=status, headers=headers)


@router.get(_FORM_PATH, summary="The verification page for people: upload a PDF or paste a QR code's content",
            response_class=HTMLResponse)
async def verify_form(request: Request, lang: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    language = pick_language(lang, request.headers.get("accept-language"))
    return _html(render_form(lang=language, self_path=_FORM_PATH), language, form=True)


@router.post(_FORM_PATH, summary="The verdict for an uploaded PDF or a pasted QR payload, as a page", response_class=HTMLResponse,
             responses={413: {"description": "larger than max_upload_bytes (the form again)"}})
async def verify_submitted(request: Request, svc: VerificationDep, lang: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    language = pick_language(lang, request.headers.get("accept-language"))

    def again(error: str, status: int) -> Response:
        return _html(render_form(lang=language, self_path=_FORM_PATH, error=error), language, status, form=True)

    if svc.limiter.take(_client(request), _PDF_COST) > 0:
        return again("busy", 429)
    body = await _read_capped(request, svc.max_upload)
    if body is None:
        return again("too_large", 413)
    submitted = await _submitted(request, body, svc.max_upload)
    if submitted is None:
        return again("unreadable_form", 422)
    pdf, qr = submitted
    if pdf:
        try:
            verdict = await asyncio.wait_for(run_in_threadpool(svc.pdf.verify, pdf), timeout=svc.timeout)
        except TimeoutError:
            return problem_response(request, status=503, slug="verification-timeout", title="Verification took too long",
                                    detail="the PDF could not be checked in time", headers={"Retry-After": "60"})
    elif qr:
        found = await _qr_verdict(request, svc, qr)
        if found is None:
            return again("no_link", 422)
        if isinstance(found, Response):
            return again("busy", 429)
        verdict = found
    else:
        return again("empty", 422)
    page_html = render_page(verdict, lang=language, self_path=_FORM_PATH, again=_FORM_PATH)
    return _html(page_html, language, status_of(verdict.outcome))


async def _submitted(request: Request, body: bytes, limit: int) -> tuple[bytes, str] | None:
    """(PDF bytes, QR text) of the form, None when it cannot be read."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in ("multipart/form-data",
                                                                                     "application/x-www-form-urlencoded"):
        return None
    request._body = body  # noqa: SLF001 - let Starlette parse the body we already read (and capped)
    try:
        form = await request.form(max_files=1, max_fields=5, max_part_size=limit)
        upload, qr = form.get("file"), form.get("qr")
        pdf = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    except Exception:  # noqa: BLE001 - malformed multipart
        return None
    return pdf, (qr if isinstance(qr, str) else "").strip()[:4096]


async def _qr_verdict(request: Request, svc: Verification, qr: str) -> Verdict | Response | None:
    """The verdict for a pasted QR payload (its link), with a link/payload mismatch called out; None without a link."""
    from verify.offline import token_of
    from verify.qrtext import link_and_payload

    token = token_of(qr)
    if token is None:
        return None
    answer = await _lookup(request, svc, token)
    if isinstance(answer, Response):
        return answer
    return link_and_payload(answer.verdict(), qr)


@router.get("/api/v1/trust-bundle", summary="The signed trust bundle for offline verification")
async def trust_bundle(svc: VerificationDep) -> Response:
    body = await run_in_threadpool(svc.bundles.current_bytes)
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=300"})

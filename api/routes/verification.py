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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem_response, register_problem_type
from api.ratelimit import Limiter, TokenBuckets, shared_limit
from api.security import BearerRequired, Principal, current_principal, token_service
from ca.service import authority_for
from certificates.access_log import Checker, InvalidPurpose, Purpose, parse_purpose
from ecert.db import session_scope
from ecert.runtime import Runtime
from identity import checkers, oidc
from verify.identified import record_verdict
from verify.publisher import BundlePublisher
from verify.batching import LookupBatcher
from verify.link import LinkVerifier, VerificationCounter
from verify.model import Answer, Outcome, Verdict
from verify.page import pick_language, render_form, render_page
from verify.online import PdfVerifier
from verify.findings import PdfLimits

__all__ = ["router", "services", "LookupShortcut"]

log = logging.getLogger(__name__)
register_problem_type("verification-timeout", "Verification took too long",
                      "The uploaded PDF could not be checked within the time limit; it is probably hostile or broken.")
for _error in (InvalidPurpose, checkers.UnknownChecker):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())
register_problem_type("unsupported-media-type", "Unsupported media type",
                      "Send the PDF as application/pdf or as the file field of multipart/form-data.")

_NOT_FOUND_COST = 5.0
_PDF_COST = 2.0
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
            "X-Content-Type-Options": "nosniff"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


class Services:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.counter = VerificationCounter(runtime.engine, runtime.clock)
        self.link = LinkVerifier(runtime.reader, runtime.clock, public_url=settings.public_url, counter=self.counter,
                                 listen=True)
        self.pdf = PdfVerifier(runtime.engine, runtime.clock, authority_for(runtime), self.link,
                               limits=PdfLimits(max_bytes=settings.max_upload_bytes))
        self.bundles = BundlePublisher(runtime.engine, runtime.keystore, runtime.clock, authority_for(runtime),
                                       token_keys=lambda: token_service(runtime).keys.jwks())
        self.buckets: Limiter = shared_limit(runtime, "verify", settings.verify_rate_per_second, settings.verify_burst)
        self.max_upload = settings.max_upload_bytes
        self.timeout = settings.verify_timeout_seconds
        self.lookups = LookupBatcher(self.link, readers=settings.verify_lookup_threads)


def services(runtime: Runtime) -> Services:
    return runtime.service("verify", Services)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    try:  # the upper transparency tree into memory now, not on the first citizen's lookup
        await run_in_threadpool(lambda: services(app.state.runtime).link.prover.head())
    except Exception:  # noqa: BLE001 - the database is not there yet: the first lookup loads it (or answers 503)
        log.warning("verification warm-up skipped; the first lookup will load the transparency tree")
    yield
    found = app.state.runtime.services.get("verify")
    if found is not None:  # keep the last few seconds of counts
        found.link.close()
        try:
            await run_in_threadpool(found.counter.flush)
        except Exception:  # noqa: BLE001 - shutting down with the database gone: the counts are lost, nothing else
            pass


router = APIRouter(tags=["verification"], lifespan=lifespan)


async def _services(request: Request) -> Services:
    """Async on purpose: a sync dependency would cost a thread hop on every public lookup."""
    return services(request.app.state.runtime)


ServicesDep = Annotated[Services, Depends(_services)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limited(request: Request, svc: Services, cost: float = 1.0) -> Response | None:
    wait = svc.buckets.take(_client(request), cost)
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


def _status(outcome: Outcome) -> int:
    return 404 if outcome is Outcome.NOT_FOUND else 200


async def _answer(svc: Services, client: str, token: str) -> Answer | float:
    """The answer for a token, or the seconds ``client`` must wait (over its limit). A lookup that finds nothing
    costs ``_NOT_FOUND_COST``, so guessing tokens is slow."""
    wait = svc.buckets.take(client)
    if wait > 0:
        return wait
    answer = svc.link.remembered(token) or await svc.lookups.answer(token)
    if answer.outcome is Outcome.NOT_FOUND:
        svc.buckets.charge(client, _NOT_FOUND_COST - 1)
    return answer


async def _lookup(request: Request, svc: Services, token: str) -> Answer | Response:
    found = await _answer(svc, _client(request), token)
    return _too_many(request, found) if isinstance(found, float) else found


def _json(answer: Answer, headers: dict[str, str]) -> Response:
    return Response(answer.body, status_code=_status(answer.outcome), headers=headers, media_type="application/json")


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
async def page(token: str, request: Request, svc: ServicesDep,
               lang: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    answer = await _lookup(request, svc, token)
    if isinstance(answer, Response):
        return answer
    if _wants_json(request):
        return _json(answer, {**_HEADERS, "Vary": "Accept"})
    verdict = answer.verdict()
    language = pick_language(lang, request.headers.get("accept-language"))
    html = render_page(verdict, lang=language, self_path=request.url.path)
    headers = {**_HEADERS, "Content-Security-Policy": _CSP, "Content-Language": "zh-CN" if language == "zh" else "en",
               "Vary": "Accept, Accept-Language"}
    return HTMLResponse(html, status_code=_status(verdict.outcome), headers=headers)


_PURPOSE = Query(max_length=400, description="Why an identified caller (bearer token) checks: a purpose code "
                "(service, eligibility, employment, transaction, inspection) or a short free text. Required with a token.")


_LOOKUP_ROUTE = "/api/v1/verify/{token}"


@router.get(_LOOKUP_ROUTE, summary="Verification by token, as JSON (identified with a bearer token and purpose)")
async def verify_token(token: str, request: Request, svc: ServicesDep,
                       purpose: Annotated[str | None, _PURPOSE] = None) -> Response:
    identified = await _identified(request, purpose)
    answer = await _lookup(request, svc, token)
    if isinstance(answer, Response):
        return answer
    if identified is not None:
        await run_in_threadpool(_record, request.app.state.runtime, answer.verdict(), *identified, "api-verify", token)
    return _json(answer, _HEADERS)


_LOOKUP_PATH = _LOOKUP_ROUTE.removesuffix("{token}")
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in _HEADERS.items()]


@dataclass(frozen=True)
class _Named:
    path: str  # what the metrics and the access log call the route


class LookupShortcut:
    """Anonymous JSON lookups (``GET /api/v1/verify/{token}``, no query string, no bearer token): the most frequent
    request of the platform, answered here without routing, dependency solving and the inner middleware, which cost
    more CPU than a remembered answer. It sits inside :class:`~api.observability.ObservabilityMiddleware` (request
    id, metrics and access log as for any route) and sends what :func:`verify_token` would, byte for byte. Anything
    else goes on to the app; so does a lookup over its limit or one that fails (an outage): the route answers it with
    its problem+json (a lookup only reads, so asking again is safe; a failed one is counted twice by the limiter)."""

    route = _Named(_LOOKUP_ROUTE)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _anonymous_lookup(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        svc = services(scope["app"].state.runtime)
        try:
            answer = await _answer(svc, scope["client"][0] if scope.get("client") else "unknown", token)
        except Exception:  # noqa: BLE001 - the route reads again and answers with the problem (503 for an outage)
            answer = None
        if not isinstance(answer, Answer):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        await send({"type": "http.response.start", "status": _status(answer.outcome),
                    "headers": [*_RAW_HEADERS, (b"content-length", str(len(answer.body)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer.body})


def _anonymous_lookup(scope: Scope) -> str | None:
    """The token of an anonymous JSON lookup, None for any other request."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"] or not scope["path"].startswith(_LOOKUP_PATH):
        return None
    token = scope["path"][len(_LOOKUP_PATH):]
    if not token or "/" in token or any(name == b"authorization" for name, _ in scope["headers"]):
        return None
    return token


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
async def verify_pdf(request: Request, svc: ServicesDep, purpose: Annotated[str | None, _PURPOSE] = None) -> Response:
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
    except asyncio.TimeoutError:
        return problem_response(request, status=503, slug="verification-timeout", title="Verification took too long",
                                detail="the PDF could not be checked in time", headers={"Retry-After": "60"})
    if identified is not None:
        await run_in_threadpool(_record, request.app.state.runtime, verdict, *identified, "api-pdf")
    return JSONResponse(verdict.to_json(), headers=_HEADERS)


_FORM_CSP = _CSP.replace("form-action 'none'", "form-action 'self'")  # the /v/ policy; the form may post to itself
_FORM_PATH = "/verify"


def _html(body: str, language: str, status: int = 200, *, form: bool = False) -> HTMLResponse:
    headers = {**_HEADERS, "Content-Security-Policy": _FORM_CSP if form else _CSP,
               "Content-Language": "zh-CN" if language == "zh" else "en", "Vary": "Accept-Language"}
    return HTMLResponse(body, status_code=status, headers=headers)


@router.get(_FORM_PATH, summary="The verification page for people: upload a PDF or paste a QR code's content",
            response_class=HTMLResponse)
async def verify_form(request: Request, lang: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    language = pick_language(lang, request.headers.get("accept-language"))
    return _html(render_form(lang=language, self_path=_FORM_PATH), language, form=True)


@router.post(_FORM_PATH, summary="The verdict for an uploaded PDF or a pasted QR payload, as a page", response_class=HTMLResponse,
             responses={413: {"description": "larger than max_upload_bytes (the form again)"}})
async def verify_submitted(request: Request, svc: ServicesDep, lang: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    language = pick_language(lang, request.headers.get("accept-language"))

    def again(error: str, status: int) -> Response:
        return _html(render_form(lang=language, self_path=_FORM_PATH, error=error), language, status, form=True)

    if svc.buckets.take(_client(request), _PDF_COST) > 0:
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
        except asyncio.TimeoutError:
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
    return _html(page_html, language, _status(verdict.outcome))


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


async def _qr_verdict(request: Request, svc: Services, qr: str) -> Verdict | Response | None:
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
async def trust_bundle(svc: ServicesDep) -> Response:
    body = await run_in_threadpool(svc.bundles.current_bytes)
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=300"})

"""The one place where errors become HTTP: RFC 9457 problem+json for every failure.

``type`` is ``/problems/<slug>`` (stable, documented at that URL on this service); ``status``,
``title`` and ``detail`` follow the RFC; ``instance`` is the request path and ``request_id``
ties the answer to the logs. Validation failures list each bad field as a JSON pointer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from jose.exceptions import JOSEError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ecert.errors import EcertError, OutcomeUnknown, ServiceUnavailable, commit_fate_unknown
from ecert.logs import request_id_var

__all__ = ["PROBLEM_JSON", "problem_response", "install_problem_handlers", "PROBLEM_TYPES", "json_pointer", "outage_of"]

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

# slug -> (title, when it happens). Served at /problems/{slug}; every slug we emit is here.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "invalid-input": ("The request is not valid", "A field is missing, malformed or out of range."),
    "validation-error": ("The request is not valid", "The body or parameters fail the schema; see errors[]."),
    "not-found": ("Not found", "No such resource, or not one you may see."),
    "conflict": ("Conflict with the current state", "The change clashes with the resource's state."),
    "unauthenticated": ("Authentication required", "Send valid credentials."),
    "forbidden": ("Not allowed", "Your credentials do not allow this."),
    "method-not-allowed": ("Method not allowed", "The resource does not support this method."),
    "payload-too-large": ("Payload too large", "The upload exceeds the size limit."),
    "rate-limited": ("Too many requests", "Slow down; retry after the given seconds."),
    "service-unavailable": ("Service temporarily unavailable", "A dependency is down; retry later."),
    "vault-unavailable": ("The key service (Vault) is unavailable", "Vault is sealed or unreachable; retry later."),
    "vault-auth-failed": ("The key service rejected ecert's credentials", "Operators must fix Vault credentials."),
    "database-unavailable": ("The database is unavailable", "The database cannot be reached; nothing was changed."),
    "outcome-unknown": (OutcomeUnknown.title, "The database connection was lost while the change was committed: it "
                        "may have been saved. Retry with the same Idempotency-Key to get its result."),
    "idempotency-key-required": ("An Idempotency-Key header is required",
                                 "Issuing requests must carry a unique Idempotency-Key header (e.g. a UUID); "
                                 "retry with the same key to get the same result."),
    "key-not-found": ("No such key in Vault", "A key ecert expected in Vault is missing."),
    "key-operation-denied": ("The key service refused the operation", "Vault's policy forbids it."),
    "key-export-forbidden": ("Private keys cannot be exported", "Keys never leave Vault."),
    "key-store-error": ("Key store error", "Vault refused or failed the request."),
    "configuration-error": ("Configuration error", "A setting is missing or invalid."),
    "internal-error": ("Internal error", "An unexpected failure; quote the request_id when reporting it."),
}


def register_problem_type(slug: str, title: str, description: str) -> None:
    """Domain packages' error slugs are registered here so /problems/{slug} documents them."""
    PROBLEM_TYPES.setdefault(slug, (title, description))


def json_pointer(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        prefix, parts = parts[0], parts[1:]
        return f"#/{'/'.join(parts)}" if prefix == "body" else f"{prefix}:/{'/'.join(parts)}"
    return "#/" + "/".join(parts)


def problem_response(
    request: Request | None,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    register_problem_type(slug, title, title)
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _ecert_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EcertError)
    headers = dict(getattr(exc, "headers", None) or {})  # e.g. WWW-Authenticate challenges
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
        log.warning("dependency unavailable: %s", exc.detail, extra={"problem": exc.slug})
    elif exc.status >= 500:
        log.error("server error: %s", exc.detail, extra={"problem": exc.slug})
    detail = exc.detail if exc.status < 500 or isinstance(exc, ServiceUnavailable) else None
    return problem_response(
        request, status=exc.status, slug=exc.slug, title=exc.title, detail=detail, headers=headers, **exc.extensions
    )


def outage_of(exc: BaseException) -> ServiceUnavailable | None:
    """The dependency outage behind ``exc``, if any: libraries that call our signers (python-jose wraps
    every error of a key's ``sign()`` in ``JWSError``) hide a Vault outage inside their own exception."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ServiceUnavailable):
            return current
        seen.add(id(current))
        wrapped = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = wrapped or current.__cause__ or current.__context__
    return None


def _wrapped_error(request: Request, exc: Exception) -> JSONResponse:
    """A library's error that carries one of ours (a Vault outage while signing a token) answers as ours."""
    outage = outage_of(exc)
    if outage is not None:
        return _ecert_error(request, outage)
    log.error("unexpected %s: %s", type(exc).__name__, exc, exc_info=exc)
    return problem_response(request, status=500, slug="internal-error", title="Internal error")


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"pointer": json_pointer(err["loc"]), "detail": err["msg"]} for err in exc.errors()]
    return problem_response(
        request,
        status=422,
        slug="validation-error",
        title="The request is not valid",
        detail=f"{len(errors)} field(s) failed validation",
        errors=errors,
    )


_HTTP_SLUGS = {404: "not-found", 405: "method-not-allowed", 401: "unauthenticated", 403: "forbidden", 413: "payload-too-large", 429: "rate-limited"}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = _HTTP_SLUGS.get(exc.status_code, "invalid-input" if exc.status_code < 500 else "internal-error")
    title = PROBLEM_TYPES.get(slug, (str(exc.detail), ""))[0]
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(request, status=exc.status_code, slug=slug, title=title, detail=detail, headers=exc.headers)


def _statement_error(request: Request, exc: Exception) -> JSONResponse:
    """Input the database cannot store (NUL characters, numbers beyond its column types) is the caller's error;
    any other statement failure stays an internal error."""
    assert isinstance(exc, sa.exc.StatementError)
    if isinstance(exc, sa.exc.DataError) or isinstance(exc.orig, ValueError):
        return problem_response(request, status=422, slug="invalid-input", title="Invalid input",
                                detail="a value in the request cannot be stored (out of range or a NUL character)")
    log.error("database statement failed: %s", type(exc.orig).__name__, exc_info=exc)
    return problem_response(request, status=500, slug="internal-error", title="Internal error")


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 for a lost database: "nothing was changed" only when the failure came before any COMMIT was sent."""
    if commit_fate_unknown(exc):
        log.warning("database lost during commit: %s", type(exc).__name__)
        return _ecert_error(request, OutcomeUnknown(
            "The database connection was lost while the change was being saved: it may have been saved. "
            "Retry with the same Idempotency-Key to get the result."))
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        request,
        status=503,
        slug="database-unavailable",
        title="The database is unavailable",
        detail="The database cannot be reached; nothing was changed. Retry later.",
        headers={"Retry-After": "5"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EcertError, _ecert_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(JOSEError, _wrapped_error)  # a Vault outage while signing a token: 503
    app.add_exception_handler(sa.exc.StatementError, _statement_error)  # more specific handlers below win
    for db_error in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(db_error, _database_error)

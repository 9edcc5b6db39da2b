"""The one error tree of ecert.

Every domain error derives from :class:`EcertError` and carries a stable problem ``slug``
(the last segment of its RFC 9457 ``type``), an HTTP status and a title. Only ``api/`` maps
them to HTTP; domain code raises them without knowing about HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "EcertError",
    "NotFound",
    "Conflict",
    "InvalidInput",
    "Forbidden",
    "Unauthenticated",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "OutcomeUnknown",
    "ConfigurationError",
    "commit_fate_unknown",
]


class EcertError(Exception):
    """Root of every error ecert raises on purpose."""

    slug: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInput(EcertError):
    slug = "invalid-input"
    status = 422
    title = "The request is not valid"


class NotFound(EcertError):
    slug = "not-found"
    status = 404
    title = "Not found"


class Conflict(EcertError):
    slug = "conflict"
    status = 409
    title = "Conflict with the current state"


class Unauthenticated(EcertError):
    slug = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(EcertError):
    slug = "forbidden"
    status = 403
    title = "Not allowed"


class PayloadTooLarge(EcertError):
    slug = "payload-too-large"
    status = 413
    title = "Payload too large"


class ServiceUnavailable(EcertError):
    """A dependency (Vault, the database) is down; the caller should retry later."""

    slug = "service-unavailable"
    status = 503
    title = "Service temporarily unavailable"
    retry_after: ClassVar[int] = 5


class OutcomeUnknown(ServiceUnavailable):
    """The database connection was lost while a change was being committed: it may or may not be saved.

    Only a request retried with the same Idempotency-Key learns which (the saved result, or the change made now).
    """

    slug = "outcome-unknown"
    title = "The outcome of the request is unknown"
    retry_after: ClassVar[int] = 2


# SQLSTATE classes with which PostgreSQL refuses a COMMIT it did not perform (integrity, transaction state,
# serialisation); any other failure of a COMMIT (connection lost, backend terminated) leaves its fate unknown.
_REFUSED_CLASSES = ("23", "25", "40")
_SQLITE_NOT_DONE = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED: the transaction is still open, nothing was written
_COMMIT_FRAMES = frozenset({"_commit_impl", "_commit_twophase_impl", "do_commit"})


def commit_fate_unknown(error: BaseException) -> bool:
    """Whether a database error was raised by a COMMIT whose outcome cannot be known from the error.

    An error raised anywhere else (connecting, a statement, a flush) means the transaction never committed;
    a COMMIT the server refused (an SQLSTATE of its own, SQLite busy or locked) did not happen either.
    """
    frames = set()
    traceback = error.__traceback__
    while traceback is not None:
        frames.add(traceback.tb_frame.f_code.co_name)
        traceback = traceback.tb_next
    if not frames & _COMMIT_FRAMES:
        return False
    orig = getattr(error, "orig", None) or error
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _REFUSED_CLASSES:
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    return not (isinstance(code, int) and code & 0xFF in _SQLITE_NOT_DONE)


class ConfigurationError(EcertError):
    slug = "configuration-error"
    title = "Configuration error"

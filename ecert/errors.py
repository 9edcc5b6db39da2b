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
    "ConfigurationError",
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


class ConfigurationError(EcertError):
    slug = "configuration-error"
    title = "Configuration error"

"""OAuth 2.0 grants, without HTTP: the client credentials grant (RFC 6749 §4.4) for now.

A client of a disabled department authenticates but gets no token (``unauthorized_client``).

Failures raise :class:`OAuthError` carrying the RFC 6749 §5.2 ``error`` code; the route answers
them in OAuth's own JSON shape. A failed client authentication is audited by
:func:`identity.clients.authenticate` in the caller's transaction, so the caller must commit
even when it answers with an error.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from sqlmodel import Session

from audit.trail import record_event
from ca.departments import get_department
from ecert.errors import EcertError
from identity.clients import authenticate
from identity.scopes import parse_scopes
from identity.tokens import AccessToken, AccessTokens

__all__ = [
    "ACR_CLIENT_SECRET",
    "OAuthError",
    "InvalidRequest",
    "InvalidClient",
    "InvalidScope",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "client_credentials_grant",
]

ACR_CLIENT_SECRET = "client-secret"


class OAuthError(EcertError):
    """An OAuth token request failed; ``error`` is the RFC 6749 §5.2 code."""

    status = 400
    error: ClassVar[str] = "invalid_request"


class InvalidRequest(OAuthError):
    slug = "oauth-invalid-request"
    title = "The token request is malformed"
    error = "invalid_request"


class InvalidClient(OAuthError):
    slug = "oauth-invalid-client"
    title = "Client authentication failed"
    status = 401
    error = "invalid_client"


class InvalidScope(OAuthError):
    slug = "oauth-invalid-scope"
    title = "The requested scope is not allowed for this client"
    error = "invalid_scope"


class UnauthorizedClient(OAuthError):
    slug = "oauth-unauthorized-client"
    title = "The client may not use this grant"
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    slug = "oauth-unsupported-grant-type"
    title = "Only the client_credentials grant is supported here"
    error = "unsupported_grant_type"


def client_credentials_grant(
    session: Session,
    tokens: AccessTokens,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
    now: dt.datetime,
) -> AccessToken:
    """An access token for an authenticated client, with the requested scopes (default: all of its own)."""
    client = authenticate(session, client_id, client_secret, now=now)
    if client is None:
        raise InvalidClient("client authentication failed")
    if client.department is not None and get_department(session, client.department).disabled_at is not None:
        record_event(session, action="identity.client.auth-failed", actor=f"client:{client.client_id}",
                     target=f"client:{client.client_id}", department=client.department,
                     details={"reason": "department-disabled"}, at=now)
        raise UnauthorizedClient(f"department {client.department} is disabled: its clients get no tokens")
    requested = parse_scopes(scope)
    refused = [s for s in requested if s not in client.scopes]
    if refused:
        raise InvalidScope(f"scope(s) not granted to this client: {' '.join(refused)}")
    granted = requested or client.scopes
    token = tokens.issue(
        subject=client.client_id, scopes=granted, client_id=client.client_id, department=client.department,
        acr=ACR_CLIENT_SECRET, now=now,
    )
    record_event(
        session, action="identity.token.issue", actor=f"client:{client.client_id}", target=f"client:{client.client_id}",
        department=client.department, details={"jti": token.claims["jti"], "scope": token.scope, "grant": "client_credentials"},
        at=now,
    )
    return token

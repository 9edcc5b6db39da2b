"""Department API clients: OAuth2 client credentials (RFC 6749 §2.3.1, §4.4).

A client belongs to one department and holds a set of scopes; a client with no department is
a platform administrator and must hold ``platform:admin``. Its secret is 256 random bits, shown
once at creation and stored only as a keyed SHA-256, so a database dump reveals no secret and a
slow password hash buys nothing. :func:`authenticate` answers an unknown client, a disabled one
and a wrong secret the same way, in the same time (a hash and a constant-time compare each).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from audit.trail import record_event
from ca.departments import active_department, validate_code
from ecert.clock import as_utc
from ecert.errors import Conflict, InvalidInput, NotFound
from identity.models import ApiClient
from identity.scopes import ADMIN_SCOPE, check_scopes, format_scopes, parse_scopes

__all__ = [
    "NewClient",
    "ClientView",
    "UnknownClient",
    "create_client",
    "list_clients",
    "disable_client",
    "authenticate",
    "secret_hash",
    "view",
    "CLIENT_ID_PATTERN",
]

CLIENT_ID_PATTERN = re.compile(r"^cl_[0-9a-f]{20}$")
_HASH_KEY = b"ecert/identity/client-secret/v1"
# Compared against when the client is unknown, so that path costs what a wrong secret costs.
_DUMMY_HASH = hashlib.sha256(b"no such client").hexdigest()


class UnknownClient(NotFound):
    """No API client has this client_id."""

    slug = "unknown-client"
    title = "No such API client"


class ClientDisabled(Conflict):
    """The API client is already disabled."""

    slug = "client-disabled"
    title = "The API client is disabled"


@dataclass(frozen=True)
class ClientView:
    client_id: str
    name: str
    department: str | None
    scopes: tuple[str, ...]
    created_at: dt.datetime
    created_by: str
    disabled_at: dt.datetime | None

    @property
    def is_admin(self) -> bool:
        return self.department is None and ADMIN_SCOPE in self.scopes

    def as_dict(self) -> dict[str, object]:
        return {
            "client_id": self.client_id, "name": self.name, "department": self.department,
            "scopes": list(self.scopes), "created_at": self.created_at.isoformat(), "created_by": self.created_by,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


@dataclass(frozen=True)
class NewClient:
    """A client just created; ``secret`` exists only here (it is never stored or shown again)."""

    client: ClientView
    secret: str

    def __repr__(self) -> str:
        return f"NewClient(client={self.client!r}, secret=[redacted])"


def secret_hash(client_id: str, secret: str) -> str:
    """Keyed SHA-256 of the secret, bound to the client_id (hex)."""
    message = client_id.encode("utf-8", "surrogateescape") + b"\0" + secret.encode("utf-8", "surrogateescape")
    return hmac.new(_HASH_KEY, message, hashlib.sha256).hexdigest()


def view(row: ApiClient) -> ClientView:
    return ClientView(
        client_id=row.client_id, name=row.name, department=row.department_code, scopes=parse_scopes(row.scopes),
        created_at=as_utc(row.created_at), created_by=row.created_by,
        disabled_at=as_utc(row.disabled_at) if row.disabled_at else None,
    )


def _check_department(session: Session, department: str | None, scopes: tuple[str, ...]) -> None:
    if department is None:
        if ADMIN_SCOPE not in scopes:
            raise InvalidInput("a client without a department is a platform administrator: give it platform:admin")
        return
    if ADMIN_SCOPE in scopes:
        raise InvalidInput("platform:admin is only for clients without a department")
    active_department(session, validate_code(department))  # UnknownDepartment, DepartmentDisabled


def create_client(
    session: Session,
    *,
    name: str,
    department: str | None,
    scopes: Iterable[str],
    actor: str,
    now: dt.datetime,
) -> NewClient:
    """Create a client and return it with its secret (shown once)."""
    granted = check_scopes(scopes)
    if not name.strip() or len(name) > 200:
        raise InvalidInput("a client needs a name of 1-200 characters")
    _check_department(session, department, granted)
    client_id = "cl_" + secrets.token_hex(10)
    secret = secrets.token_urlsafe(32)
    row = ApiClient(
        client_id=client_id, name=name.strip(), department_code=department, scopes=format_scopes(granted),
        secret_hash=secret_hash(client_id, secret), created_at=now, created_by=actor,
    )
    session.add(row)
    session.flush()
    record_event(
        session, action="identity.client.create", actor=actor, target=f"client:{client_id}", department=department,
        details={"name": row.name, "scopes": list(granted)}, at=now,
    )
    return NewClient(view(row), secret)


def list_clients(session: Session, *, department: str | None = None, include_disabled: bool = True) -> list[ClientView]:
    query = select(ApiClient).order_by(col(ApiClient.created_at), col(ApiClient.client_id))
    if department is not None:
        query = query.where(ApiClient.department_code == department)
    if not include_disabled:
        query = query.where(col(ApiClient.disabled_at).is_(None))
    return [view(row) for row in session.exec(query)]


def get_client(session: Session, client_id: str) -> ClientView:
    row = session.get(ApiClient, client_id)
    if row is None:
        raise UnknownClient(f"no API client {client_id}")
    return view(row)


def disable_client(session: Session, client_id: str, *, actor: str, now: dt.datetime) -> ClientView:
    """Stop the client getting tokens; tokens already issued run out within their lifetime."""
    row = session.get(ApiClient, client_id, with_for_update=True)
    if row is None:
        raise UnknownClient(f"no API client {client_id}")
    if row.disabled_at is not None:
        raise ClientDisabled(f"API client {client_id} is already disabled")
    row.disabled_at = now
    session.add(row)
    session.flush()
    record_event(
        session, action="identity.client.disable", actor=actor, target=f"client:{client_id}",
        department=row.department_code, details={"name": row.name}, at=now,
    )
    return view(row)


def authenticate(session: Session, client_id: str, secret: str, *, now: dt.datetime) -> ClientView | None:
    """The client if ``secret`` is its secret and it is enabled, else None (and an audit event).

    Every failure costs one hash and one constant-time compare, and all failures look alike to the
    caller; the audit event names the reason for operators (never the secret presented).
    """
    well_formed = bool(CLIENT_ID_PATTERN.match(client_id))
    row = session.get(ApiClient, client_id) if well_formed else None
    presented = secret_hash(client_id, secret)
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(presented, expected)
    if row is not None and matches and row.disabled_at is None:
        return view(row)
    reason = "unknown-client" if row is None else ("wrong-secret" if not matches else "disabled")
    record_event(
        session, action="identity.client.auth-failed", actor=f"client:{client_id}" if well_formed else "anonymous",
        target=f"client:{client_id}" if well_formed else None, department=row.department_code if row else None,
        details={"reason": reason}, at=now,
    )
    return None

"""Who is calling: bearer access tokens to a :class:`Principal`, and scope checks on routes.

``current_principal`` turns ``Authorization: Bearer <jwt>`` into a Principal (401 problem
``unauthenticated`` with ``WWW-Authenticate: Bearer`` when missing or invalid);
``require_scopes(...)`` adds the scope check (403 problem ``insufficient-scope``) and refuses writes by
clients of a disabled department (403 problem ``department-disabled``). A platform
administrator (a client without a department holding ``platform:admin``) passes every scope
check; routes then make it name the department it acts for (``api.callers.department_for``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.deps import container_of
from api.problems import register_problem_type
from ca import departments
from ecert.errors import Forbidden, Unauthenticated
from identity.tokens import InvalidToken, VerifiedToken

__all__ = [
    "Principal",
    "PrincipalKind",
    "current_principal",
    "require_scopes",
    "InsufficientScope",
    "DepartmentStopped",
    "require_active_department",
    "BearerRequired",
    "CurrentPrincipal",
]

PrincipalKind = Literal["client", "admin", "person", "staff"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request.

    ``department`` is None for platform administrators (and, later, for people): routes that
    act for a department must require a department scope, which people never hold.
    """

    subject: str
    kind: PrincipalKind
    department: str | None
    scopes: frozenset[str]
    acr: str | None = None
    client_id: str | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def allows(self, scope: str) -> bool:
        """Department scopes need a department (people never have one); account scopes need the account kind."""
        if self.kind in ("person", "staff"):
            return scope in self.scopes and scope.startswith(("openid", "profile", "counter:", "licences:own"))
        return self.is_admin or (self.department is not None and scope in self.scopes)

    @classmethod
    def from_token(cls, token: VerifiedToken) -> Principal:
        kind: PrincipalKind = token.account_kind or ("admin" if token.is_admin else "client")
        return cls(
            subject=token.subject, kind=kind, department=token.department, scopes=token.scopes, acr=token.acr,
            client_id=token.client_id, token_id=token.claims.get("jti"),
        )


class BearerRequired(Unauthenticated):
    """No valid bearer token; carries the RFC 6750 challenge."""

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="ecert"' + (f', error="{error}"' if error else "")
        self.headers = {"WWW-Authenticate": challenge}


class InsufficientScope(Forbidden):
    """The token lacks a scope the route needs."""

    slug = "insufficient-scope"
    title = "The token lacks a required scope"

    def __init__(self, scopes: tuple[str, ...]) -> None:
        super().__init__(f"this needs scope(s): {' '.join(scopes)}", required_scopes=list(scopes))
        self.headers = {"WWW-Authenticate": f'Bearer realm="ecert", error="insufficient_scope", scope="{" ".join(scopes)}"'}


register_problem_type(InsufficientScope.slug, InsufficientScope.title, InsufficientScope.__doc__ or "")


def bearer_token(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise BearerRequired("send an access token: Authorization: Bearer <token>", error=None)
    return credentials.strip()


async def current_principal(request: Request) -> Principal:
    """The caller, from a valid access token (CPU only: public keys and verified tokens are cached)."""
    token = bearer_token(request)
    try:
        verified = container_of(request).tokens.verify(token)
    except InvalidToken as exc:
        raise BearerRequired(exc.detail) from exc
    return Principal.from_token(verified)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class DepartmentStopped(Forbidden):
    """The caller's department is disabled: its clients may no longer change anything."""

    slug = "department-disabled"
    title = "The department is disabled"


register_problem_type(DepartmentStopped.slug, DepartmentStopped.title, DepartmentStopped.__doc__ or "")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def require_active_department(request: Request, principal: Principal) -> None:
    """Refuse a write by a client of a disabled department, whenever its token was issued.

    The department's status comes from the per-process cache of :mod:`ca.departments` (a database read
    at most every ``STATUS_TTL_SECONDS`` per department, in a worker thread), so the hot path stays local.
    """
    if principal.department is None or request.method in _READS:
        return
    engine = request.app.state.runtime.engine
    active = departments.cached_status(engine, principal.department)
    if active is None:
        active = await run_in_threadpool(departments.load_status, engine, principal.department)
    if not active:
        raise DepartmentStopped(f"department {principal.department} is disabled: its clients may no longer make changes")


def require_scopes(*scopes: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, if it holds every one of ``scopes`` (admins hold them all) and, for a write,
    its department (if any) is not disabled."""
    async def checked(request: Request, principal: CurrentPrincipal) -> Principal:
        if not all(principal.allows(scope) for scope in scopes):
            raise InsufficientScope(scopes)
        await require_active_department(request, principal)
        return principal

    checked.__name__ = "require_" + "_".join(s.replace(":", "_") for s in scopes)
    return checked

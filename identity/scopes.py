"""The scopes ecert grants, and their space-separated OAuth form (RFC 6749 §3.3)."""

from __future__ import annotations

from collections.abc import Iterable

from ecert.errors import InvalidInput

__all__ = ["SCOPES", "ADMIN_SCOPE", "DEPARTMENT_SCOPES", "check_scopes", "parse_scopes", "format_scopes"]

ADMIN_SCOPE = "platform:admin"

# scope -> what it allows. Department scopes act on the client's own department only.
DEPARTMENT_SCOPES: dict[str, str] = {
    "licences:issue": "issue and amend e-licences, run bulk issuance",
    "licences:manage": "suspend, reinstate, revoke, cancel... e-licences",
    "licences:read": "read e-licences and licence types",
    "types:manage": "define, enable and disable licence types",
    "identity:verify": "check tokens through /api/v1/identity/verify",
    "stats:read": "read the department's statistics and dashboard",
}
SCOPES: dict[str, str] = {
    **DEPARTMENT_SCOPES,
    ADMIN_SCOPE: "every scope, for any department the request names (clients without a department only)",
}


class UnknownScope(InvalidInput):
    """A scope ecert does not define."""

    slug = "unknown-scope"
    title = "No such scope"


def parse_scopes(value: str | None) -> tuple[str, ...]:
    """``"a b a"`` -> ``("a", "b")``: split on spaces, drop duplicates, keep the order."""
    return tuple(dict.fromkeys((value or "").split()))


def format_scopes(scopes: Iterable[str]) -> str:
    return " ".join(dict.fromkeys(scopes))


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, de-duplicated, if ecert defines every one of them."""
    wanted = tuple(dict.fromkeys(s for scope in scopes for s in scope.split()))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise UnknownScope(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return wanted

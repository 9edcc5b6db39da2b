"""The API caller in the licence library's terms: an :class:`~certificates.issuance.Actor` and its department."""

from __future__ import annotations

from typing import Any

from certificates.issuance import Actor
from ecert.errors import Forbidden

__all__ = ["actor_of", "department_for"]


def actor_of(principal: Any) -> Actor:
    """The API caller as the library's Actor: a department client, or a platform admin (no department)."""
    department = getattr(principal, "department", None)
    subject = getattr(principal, "subject", None) or str(principal)
    return Actor(subject=str(subject), department=department)


def department_for(actor: Actor, requested: str | None) -> str:
    """The department a request acts for: the caller's own; an admin must name one."""
    if actor.department is not None:
        if requested not in (None, actor.department):
            raise Forbidden(f"you act for department {actor.department}, not {requested}")
        return actor.department
    if not requested:
        raise Forbidden("a platform administrator must name the department")
    return requested

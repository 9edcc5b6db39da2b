"""Wiring of the licence library for the API: the service (with its sealer) and the caller as an Actor."""

from __future__ import annotations

from typing import Any

from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor
from certificates.service import LicenceService
from ecert.errors import Forbidden
from ecert.runtime import Runtime

__all__ = ["licence_service", "actor_of", "department_for"]


def _sealing(runtime: Runtime) -> tuple[Any, Any]:
    """The department seal keys (ca) and the PDF sealer (signing), once those packages provide them."""
    from api.routes import licence_sealing

    return licence_sealing.build(runtime)


def licence_service(runtime: Runtime) -> LicenceService:
    def factory(rt: Runtime) -> LicenceService:
        seal_keys, sealer = _sealing(rt)
        return LicenceService(
            engine=rt.engine, keystore=rt.keystore, clock=rt.clock, blobs=DatabaseBlobStore(), seal_keys=seal_keys,
            sealer=sealer, public_url=rt.settings.public_url,
        )

    return runtime.service("licences", factory)


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

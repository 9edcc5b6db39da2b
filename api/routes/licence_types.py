"""Licence types: departments (scope types:manage) define the kinds of licence they issue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.deps import RuntimeDep, SessionDep
from api.callers import actor_of, department_for
from api.security import Principal, require_scopes
from certificates.types import add_type, list_types, parse_type_spec, set_type_active
from certificates.views import type_view

router = APIRouter(prefix="/api/v1/licence-types", tags=["licence types"])

Managing = Annotated[Principal, Depends(require_scopes("types:manage"))]
Reading = Annotated[Principal, Depends(require_scopes("licences:read"))]


@router.post("", status_code=201, summary="Add a licence type (or its next version)")
def create_type(body: dict[str, Any], principal: Managing, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    actor = actor_of(principal)
    department = department_for(actor, body.pop("department", None))
    row = add_type(session, department_code=department, spec=parse_type_spec(body), actor=actor.subject, now=runtime.clock.now())
    return type_view(row)


@router.get("", summary="Your department's licence types (every version)")
def get_types(principal: Reading, session: SessionDep, department: str | None = None) -> dict[str, Any]:
    actor = actor_of(principal)
    code = department_for(actor, department) if (actor.department or department) else None
    return {"items": [type_view(row) for row in list_types(session, department_code=code)]}


def _toggle(active: bool) -> Any:
    def toggle(code: str, principal: Managing, session: SessionDep, runtime: RuntimeDep, department: str | None = None) -> dict[str, Any]:
        actor = actor_of(principal)
        dept = department_for(actor, department)
        set_type_active(session, department_code=dept, code=code, active=active, actor=actor.subject, now=runtime.clock.now())
        return {"items": [type_view(r) for r in list_types(session, department_code=dept) if r.code == code]}

    toggle.__name__ = "enable_type" if active else "disable_type"
    return toggle


router.post("/{code}/disable", summary="Stop issuing a licence type")(_toggle(False))
router.post("/{code}/enable", summary="Issue a licence type again")(_toggle(True))

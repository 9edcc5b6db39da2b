"""Department API clients, managed by platform administrators (the same operations as ``ecert client``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RuntimeDep, SessionDep
from api.security import Principal, require_scopes
from identity.clients import create_client, disable_client, get_client, list_clients
from identity.scopes import ADMIN_SCOPE, DEPARTMENT_SCOPES

router = APIRouter(prefix="/api/v1/clients", tags=["clients"])

Admin = Annotated[Principal, Depends(require_scopes(ADMIN_SCOPE))]


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, examples=["business registration system"])
    department: str | None = Field(None, description="the department it acts for; omit only for an administrator client")
    scopes: list[str] = Field(default_factory=lambda: list(DEPARTMENT_SCOPES), examples=[["licences:issue", "licences:read"]])


@router.post("", status_code=201, summary="Create an API client; its secret is in this response only")
def add(body: ClientIn, principal: Admin, session: SessionDep, runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    new = create_client(session, name=body.name, department=body.department, scopes=body.scopes, actor=principal.subject,
                        now=runtime.clock.now())
    response.headers["Cache-Control"] = "no-store"
    return {**new.client.as_dict(), "client_secret": new.secret}


@router.get("", summary="List API clients")
def list_all(principal: Admin, session: SessionDep, department: str | None = None) -> dict[str, Any]:
    return {"items": [c.as_dict() for c in list_clients(session, department=department)]}


@router.get("/{client_id}", summary="One API client")
def one(client_id: str, principal: Admin, session: SessionDep) -> dict[str, Any]:
    return get_client(session, client_id).as_dict()


@router.post("/{client_id}/disable", summary="Disable a client (no new tokens; issued tokens run out within 15 minutes)")
def disable(client_id: str, principal: Admin, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    return disable_client(session, client_id, actor=principal.subject, now=runtime.clock.now()).as_dict()

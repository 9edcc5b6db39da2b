"""People's side of identity: the OpenID Connect provider, the citizen portal and the counter."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import agents, counter, oidc, portal

__all__ = ["routes"]

routes = APIRouter()
routes.include_router(oidc.router)
routes.include_router(portal.router)
routes.include_router(counter.router)
routes.include_router(agents.router)  # enterprise agents in the portal

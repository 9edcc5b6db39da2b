"""The FastAPI application: routes, error handling and observability around a Runtime."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import ecert
from api.bodies import JsonBodyLimit
from api.observability import ObservabilityMiddleware
from api.problems import install_problem_handlers
from api.routes import clients
from api.routes import departments
from api.routes import disclosures
from api.routes import health
from api.routes import licences
from api.routes import accounts
from api.routes import oauth
from api.routes import pki
from api.routes import statistics
from api.routes import status_lists
from api.routes import transparency
from api.routes import verification
from ecert.logs import configure_logging
from ecert.runtime import Runtime
from ecert.settings import load_settings

__all__ = ["create_app", "create_app_from_env"]


def create_app(runtime: Runtime) -> FastAPI:
    """The app over an already-built runtime (tests, and each worker via the factory below)."""
    app = FastAPI(
        title="ecert",
        version=ecert.__version__,
        summary="Electronic certificate and identity authority",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_middleware(JsonBodyLimit, limit=runtime.settings.max_json_bytes)  # before any route parses a body
    app.add_middleware(verification.LookupShortcut)  # inside the next: anonymous JSON lookups skip the router
    app.add_middleware(ObservabilityMiddleware)
    # Routes are matched in order: the hot public paths first (health, verification, token checks).
    app.include_router(health.router)
    app.include_router(verification.router)  # public verification: /v/{token}, /api/v1/verify/*, trust bundle
    app.include_router(oauth.router)  # token endpoint, JWKS, /api/v1/identity/verify (warms the token keys)
    app.include_router(transparency.router)
    app.include_router(pki.router)  # CA certificates, CRLs, OCSP, TSA
    app.include_router(departments.router)  # departments, seal certificates, revocation (admin)
    app.include_router(clients.router)  # department API clients (admin)
    app.include_router(statistics.router)  # counts, CSV, dashboard, latency (department-scoped)
    app.include_router(status_lists.router)  # signed licence status lists for offline verifiers
    app.include_router(accounts.routes)  # OpenID Connect provider, citizen portal, counter console
    app.include_router(disclosures.router)  # who checked my licences, my consents (portal)
    app.include_router(disclosures.api_router)  # /api/v1/me/licences for apps under a standing consent
    app.include_router(licences.routes)  # licences, types, bulk jobs (starts the bulk worker)
    return app


def settle_heap() -> None:
    """Once started, move every object so far (modules, types, the runtime: about 200 thousand) out of the
    collector's reach: a full collection then walks only what requests created, instead of pausing the worker for
    ~100 ms each time (the tail latency of every route under load)."""
    gc.collect()
    gc.freeze()


def create_app_from_env() -> FastAPI:
    """Uvicorn factory: each worker reads settings (pointing at a running Vault) and builds its runtime."""
    settings = load_settings()
    configure_logging(settings.log_level)
    runtime = Runtime.build(settings)

    app = create_app(runtime)
    routers_lifespan = app.router.lifespan_context  # the included routers' startup/shutdown

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with routers_lifespan(app_):
            settle_heap()
            yield
        runtime.close()

    app.router.lifespan_context = lifespan
    return app

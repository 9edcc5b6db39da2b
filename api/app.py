"""The FastAPI application: routes, error handling and observability around one service container."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import ecert
from api.bodies import JsonBodyLimit
from api.lookups import LookupShortcut
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
from ecert.container import Container
from ecert.logs import configure_logging
from ecert.runtime import Runtime
from ecert.settings import load_settings

__all__ = ["create_app", "create_app_from_env"]


def create_app(container: Container, *, settle: bool = False) -> FastAPI:
    """The app over an already-built container (tests, and each worker via the factory below). Its one lifespan
    starts the container's background work and stops it on shutdown; ``settle`` freezes the start-up heap."""

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        # sync routes run in this pool: admitted issuances wait in it, and 40 threads stay for everything else
        anyio.to_thread.current_default_thread_limiter().total_tokens = container.settings.issue_queue + 40
        await run_in_threadpool(container.start)
        if settle:
            settle_heap()
        yield
        await run_in_threadpool(container.stop)

    app = FastAPI(
        title="ecert",
        version=ecert.__version__,
        summary="Electronic certificate and identity authority",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.runtime = container.runtime
    install_problem_handlers(app)
    app.add_middleware(JsonBodyLimit, limit=container.settings.max_json_bytes)  # before any route parses a body
    app.add_middleware(LookupShortcut)  # inside the next: anonymous JSON lookups skip the router
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
    """Uvicorn factory: each worker reads settings (pointing at a running Vault) and builds its container."""
    settings = load_settings()
    configure_logging(settings.log_level)
    runtime = Runtime.build(settings)
    app = create_app(Container.build(runtime), settle=True)
    parent = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with parent(app_):
            yield
        runtime.close()

    app.router.lifespan_context = lifespan
    return app

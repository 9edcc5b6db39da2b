"""Liveness, readiness, metrics and the problem-type documentation."""

from __future__ import annotations

import html

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import RuntimeDep
from api.observability import render_metrics
from api.problems import PROBLEM_TYPES, problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database and Vault reachable, Vault unsealed")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    database = await run_in_threadpool(runtime.database_ready)
    vault = await run_in_threadpool(runtime.keystore.connection.health)
    checks = {
        "database": "ok" if database else "unavailable",
        "vault": "ok" if vault.ready else ("sealed" if vault.reachable and vault.sealed else "unavailable"),
    }
    if database and vault.ready:
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(f"{name} {state}" for name, state in checks.items() if state != "ok")
    return problem_response(
        None,
        status=503,
        slug="service-unavailable",
        title="Service temporarily unavailable",
        detail=f"not ready: {failing}",
        headers={"Retry-After": "5"},
        checks=checks,
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


@router.get("/problems/{slug}", summary="What a problem type means", response_class=HTMLResponse)
def problem_type(slug: str) -> HTMLResponse:
    if slug not in PROBLEM_TYPES:
        return HTMLResponse("<h1>Unknown problem type</h1>", status_code=404)
    title, description = (html.escape(text) for text in PROBLEM_TYPES[slug])
    return HTMLResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{description}</p>")

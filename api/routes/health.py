"""Liveness, readiness, metrics and the problem-type documentation.

``/readyz`` checks the database, Vault and (when PDFs live outside the database) the blob store
concurrently, each in a small pool of its own with at most one check of each kind in flight, and
answers within :data:`ecert.readiness.READY_BUDGET` seconds whatever they do: a check that has not answered by then
counts as ``timeout``. A hung dependency therefore never holds the probe or the request threads.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import ContainerDep
from api.observability import render_metrics
from api.problems import PROBLEM_TYPES, problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database, Vault (unsealed) and the blob store usable; answers within 1 s")
async def readyz(container: ContainerDep) -> JSONResponse:
    outcomes = await container.readiness.check()
    checks = {name: state for name, (state, _) in outcomes.items()}
    if all(state == "ok" for state in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    reasons = {name: reason for name, (state, reason) in outcomes.items() if state != "ok" and reason}
    failing = ", ".join(
        f"{name} {state}" + (f" ({reasons[name]})" if name in reasons else "")
        for name, state in checks.items() if state != "ok"
    )
    extra: dict[str, Any] = {"reasons": reasons} if reasons else {}
    return problem_response(
        None,
        status=503,
        slug="service-unavailable",
        title="Service temporarily unavailable",
        detail=f"not ready: {failing}",
        headers={"Retry-After": "5"},
        checks=checks,
        **extra,
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

"""Statistics for departments and the platform: counts per day, CSV, a dashboard page, API latency.

A department client (scope ``stats:read``) sees its own department only; a platform administrator
sees every department, or the one it names.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse

from api.deps import RuntimeDep, SessionDep
from api.observability import LATENCY
from api.security import Principal, require_scopes
from audit import stats
from audit.dashboard import render_dashboard
from ecert.errors import Forbidden, InvalidInput

router = APIRouter(prefix="/api/v1/statistics", tags=["statistics"])

Reader = Annotated[Principal, Depends(require_scopes("stats:read"))]
Admin = Annotated[Principal, Depends(require_scopes("platform:admin"))]
MAX_DAYS = 400


def _range(runtime: Any, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    end = end or runtime.clock.now().date()
    start = start or end - dt.timedelta(days=29)
    if start > end or (end - start).days > MAX_DAYS:
        raise InvalidInput(f"give start <= end, at most {MAX_DAYS} days apart")
    return start, end


def _departments(principal: Principal, department: str | None) -> list[str] | None:
    if principal.is_admin:
        return [department] if department else None
    if department not in (None, principal.department):
        raise Forbidden(f"you read the statistics of {principal.department}, not {department}")
    return [str(principal.department)]


@router.get("", summary="Counts per day, department, metric and dimension (or sums grouped by one of them)")
def counts(principal: Reader, session: SessionDep, runtime: RuntimeDep, start: dt.date | None = None,
           end: dt.date | None = None, department: str | None = None, metric: str | None = Query(None, max_length=64),
           by: str | None = Query(None, pattern="^(day|department|dimension)$")) -> dict[str, Any]:
    first, last = _range(runtime, start, end)
    scope = _departments(principal, department)
    if by:
        rows = stats.summary(session, start=first, end=last, by=by, departments=scope, metric_prefix=metric)
        return {"start": first, "end": last, "by": by, "items": [{by: k, "metric": m, "count": n} for k, m, n in rows]}
    daily = stats.daily_counts(session, start=first, end=last, departments=scope, metric_prefix=metric)
    return {"start": first, "end": last, "items": [{**r.__dict__, "day": r.day.isoformat()} for r in daily]}


@router.get("/export.csv", summary="The same counts as CSV", response_class=Response)
def export(principal: Reader, session: SessionDep, runtime: RuntimeDep, start: dt.date | None = None,
           end: dt.date | None = None, department: str | None = None, metric: str | None = None) -> Response:
    first, last = _range(runtime, start, end)
    rows = stats.daily_counts(session, start=first, end=last, departments=_departments(principal, department),
                              metric_prefix=metric)
    return Response(stats.to_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="ecert-statistics-{first}-{last}.csv"'})


@router.get("/dashboard", summary="The statistics dashboard (HTML with charts)", response_class=HTMLResponse)
def dashboard(principal: Reader, session: SessionDep, runtime: RuntimeDep, start: dt.date | None = None,
              end: dt.date | None = None, department: str | None = None) -> HTMLResponse:
    first, last = _range(runtime, start, end)
    scope = _departments(principal, department)
    rows = stats.daily_counts(session, start=first, end=last, departments=scope)
    title = f"Statistics: {', '.join(scope)}" if scope else "Statistics: all departments"
    return HTMLResponse(render_dashboard(rows, title=title, start=first, end=last),
                        headers={"Cache-Control": "private, no-store"})


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative (upper bound, count) buckets, interpolating within a bucket."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return lower + (upper - lower) * share
        lower, below = upper, cumulative
    return lower


@router.get("/latency", summary="API latency percentiles per route (this worker, since it started)")
def latency(principal: Admin) -> dict[str, Any]:
    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for metric in LATENCY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                key = (sample.labels["method"], sample.labels["route"])
                routes.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
    items = []
    for (method, route), buckets in sorted(routes.items()):
        buckets.sort()
        p = {f"p{int(q * 100)}_ms": (round(v * 1000, 2) if (v := _quantile(buckets, q)) is not None else None)
             for q in (0.5, 0.95, 0.99)}
        items.append({"method": method, "route": route, "count": int(buckets[-1][1]), **p})
    return {"items": items, "note": "estimated from histogram buckets; one worker process"}

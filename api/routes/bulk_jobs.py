"""Bulk issuance jobs: submit thousands of rows, follow progress, read per-row results, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.callers import actor_of, department_for
from api.deps import LicencesDep, Offset, SessionDep
from api.security import Principal, require_scopes
from certificates.bulk import MAX_ROWS, get_job, job_items
from certificates.issuance import require_key
from certificates.views import item_view, job_view

router = APIRouter(prefix="/api/v1/bulk-jobs", tags=["bulk issuance"])

Issuing = Annotated[Principal, Depends(require_scopes("licences:issue"))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128, min_length=1)]


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type_code: str = Field(max_length=16)
    department: str | None = None
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS,
                                       description="each {holder: {kind, name, id_number}, fields: {...}}")


@router.post("", status_code=202, summary="Submit a bulk issuance job (Idempotency-Key required)")
def submit(body: BulkIn, principal: Issuing, service: LicencesDep, response: Response,
           idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    key = require_key(idempotency_key)
    actor = actor_of(principal)
    job, replayed = service.submit_bulk(actor, department=department_for(actor, body.department), type_code=body.type_code,
                                        rows=body.rows, idempotency_key=key)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return job_view(job)


@router.get("/{job_id}", summary="Progress of a bulk job")
def progress(job_id: str, principal: Issuing, session: SessionDep) -> dict[str, Any]:
    return job_view(get_job(session, actor_of(principal), job_id))


@router.get("/{job_id}/items", summary="Per-row results")
def items(job_id: str, principal: Issuing, session: SessionDep, status: str | None = None,
          offset: Offset = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    rows = job_items(session, actor_of(principal), job_id, status=status, offset=offset, limit=limit)
    return {"items": [item_view(i) for i in rows], "offset": offset, "limit": limit}


@router.post("/{job_id}/cancel", summary="Cancel a bulk job (rows not yet issued are cancelled)")
def cancel(job_id: str, principal: Issuing, service: LicencesDep) -> dict[str, Any]:
    return job_view(service.cancel_bulk(actor_of(principal), job_id))

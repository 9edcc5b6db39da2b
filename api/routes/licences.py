"""Issuing, reading and changing e-licences (department API clients; admins see all)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.callers import actor_of, department_for
from api.deps import LicencesDep, Offset, RuntimeDep, SessionDep
from api.problems import register_problem_type
from api.routes import bulk_jobs, licence_types
from api.security import Principal, require_scopes
from certificates import bulk, identifiers, issuance, lifecycle, records, service, types
from certificates.blobs import BlobCorrupted, BlobNotFound, BlobStoreUnavailable
from certificates.grouping import IssuanceBusy
from certificates.issuance import IssueRequest, require_key
from certificates.lifecycle import Action
from certificates.service import LicenceService
from ecert.errors import PayloadTooLarge
from signing import InvalidPdf, SealingUnavailable, SealMisconfigured, SealUnusable

_ERRORS = (
    identifiers.InvalidLicenceNumber, lifecycle.InvalidTransition, lifecycle.InvalidEffectiveDate,
    types.UnknownLicenceType, types.ForeignLicenceType, issuance.IdempotencyKeyReused,
    issuance.IdempotentRequestInProgress, records.LicenceNotFound, bulk.JobNotFound, bulk.JobFinished,
    service.NoDocument, BlobNotFound, BlobStoreUnavailable, BlobCorrupted, IssuanceBusy,
    InvalidPdf, SealingUnavailable, SealMisconfigured, SealUnusable,
)
for _error in _ERRORS:
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

router = APIRouter(prefix="/api/v1/licences", tags=["licences"])

Issuing = Annotated[Principal, Depends(require_scopes("licences:issue"))]
Managing = Annotated[Principal, Depends(require_scopes("licences:manage"))]
Reading = Annotated[Principal, Depends(require_scopes("licences:read"))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128, min_length=1)]


class HolderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="person or enterprise")
    name: str = Field(max_length=200)
    id_number: str = Field(max_length=32, description="resident ID number or unified social credit code")


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type_code: str = Field(max_length=16)
    type_version: int | None = Field(None, ge=1, le=2**31 - 1)
    department: str | None = Field(None, description="only for platform administrators")
    holder: HolderIn
    fields: dict[str, Any]
    valid_from: dt.datetime | None = Field(None, description="with an offset (e.g. +08:00); default: now")
    historical: bool = Field(False, description="record a licence issued before ecert: back-dated, possibly already "
                             "expired (its history starts at valid_from, which is then required)")


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500)
    effective_at: dt.datetime | None = None


class AmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any]
    holder_name: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=500)


@router.post("", status_code=201, summary="Issue one e-licence (Idempotency-Key required)")
def issue(body: IssueIn, principal: Issuing, licences: LicencesDep, response: Response,
          idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    return _issue(body, None, principal, licences, response, idempotency_key)


@router.post("/with-document", status_code=201,
             summary="Issue one e-licence whose PDF the department made itself; ecert checks and seals it")
def issue_with_document(
    principal: Issuing, licences: LicencesDep, runtime: RuntimeDep, response: Response,
    data: Annotated[str, Form(description="the same JSON body as POST /api/v1/licences", max_length=1_000_000)],
    file: Annotated[UploadFile, File(description="the department's PDF (application/pdf)")],
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    try:
        body = IssueIn.model_validate_json(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", "data", *e["loc"])} for e in exc.errors()]) from exc
    limit = runtime.settings.max_upload_bytes
    document = file.file.read(limit + 1)
    if len(document) > limit:
        raise PayloadTooLarge(f"the PDF is larger than {limit} bytes")
    return _issue(body, document, principal, licences, response, idempotency_key)


def _issue(body: IssueIn, document: bytes | None, principal: Principal, licences: LicenceService, response: Response,
           idempotency_key: str | None) -> dict[str, Any]:
    """Issued by the service in a transaction of its own (group commit); this request holds no connection."""
    key = require_key(idempotency_key)
    actor = actor_of(principal)
    request = IssueRequest(
        type_code=body.type_code, type_version=body.type_version, holder_kind=body.holder.kind,
        holder_name=body.holder.name, holder_id=body.holder.id_number, fields=body.fields,
        valid_from=body.valid_from, idempotency_key=key, document=document, historical=body.historical,
    )
    licence, replayed = licences.issue_grouped(actor, department_for(actor, body.department), request)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/licences/{licence.id}"
    return licences.view(licence)


@router.get("", summary="List your department's e-licences")
def list_licences(principal: Reading, session: SessionDep, service: LicencesDep,
                  department: str | None = None, status: str | None = None,
                  offset: Offset = 0, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    actor = actor_of(principal)
    rows = records.list_for_department(session, actor, department_for(actor, department), status=status, offset=offset, limit=limit)
    return {"items": [service.view(r) for r in rows], "offset": offset, "limit": limit}


@router.get("/{licence_id}", summary="One e-licence with its full history")
def get_licence(licence_id: str, principal: Reading, session: SessionDep, service: LicencesDep) -> dict[str, Any]:
    licence = records.get_licence(session, actor_of(principal), licence_id)
    return service.view(licence, history=True, session=session)


@router.get("/{licence_id}/pdf", summary="The sealed PDF", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def get_pdf(licence_id: str, principal: Reading, session: SessionDep, service: LicencesDep) -> Response:
    pdf = service.pdf(session, actor_of(principal), licence_id)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{licence_id}.pdf"'})


@router.post("/{licence_id}/amend", status_code=201, summary="Amend: issue a new version that supersedes this one")
def amend(licence_id: str, body: AmendIn, principal: Issuing, service: LicencesDep, response: Response,
          idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    key = require_key(idempotency_key)
    new, old, replayed = service.amend(actor_of(principal), licence_id, fields=body.fields, holder_name=body.holder_name,
                                       reason=body.reason, idempotency_key=key)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return {**service.view(new), "superseded": service.view(old)}


def _status_route(action: Action) -> None:
    def change(licence_id: str, body: StatusChangeIn, principal: Managing, service: LicencesDep) -> dict[str, Any]:
        licence = service.change(actor_of(principal), licence_id, action, reason=body.reason, effective_at=body.effective_at)
        return service.view(licence, history=True)

    change.__name__ = f"{action.value.replace('-', '_')}_licence"
    router.post(f"/{{licence_id}}/{action.value}", summary=f"{action.value.replace('-', ' ').capitalize()} an e-licence")(change)


for _action in (Action.SUSPEND, Action.REINSTATE, Action.REVOKE, Action.CANCEL, Action.TRANSFER, Action.WITHDRAW, Action.MARK_OTHER):
    _status_route(_action)


# Everything of the licence library, registered with one line in api/app.py.
routes = APIRouter()
routes.include_router(router)
routes.include_router(licence_types.router)
routes.include_router(bulk_jobs.router)

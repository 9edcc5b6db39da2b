"""Departments and their seal certificates (platform administrators; a department reads its own)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import AuthorityDep, RuntimeDep, SessionDep
from api.security import Principal, require_scopes
from ca import departments as registry
from ca.models import Department, IssuedCertificate
from ca.seals import list_seals
from certificates.text import text_problem
from ecert.errors import Forbidden

router = APIRouter(prefix="/api/v1", tags=["departments"])

Admin = Annotated[Principal, Depends(require_scopes("platform:admin"))]
Reading = Annotated[Principal, Depends(require_scopes("licences:read"))]


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=2, max_length=16, pattern=r"^[A-Z][A-Z0-9]+$", examples=["SCJGJ"])
    name: str = Field(min_length=1, max_length=64, examples=["市场监督管理局"])
    name_en: str | None = Field(None, max_length=200, examples=["Administration for Market Regulation"])

    @field_validator("name", "name_en")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        """NFC, without the controls and invisible characters that would spoof the seal subject and public page."""
        if value is None:
            return None
        text = unicodedata.normalize("NFC", value)
        problem = text_problem(text)
        if problem:
            raise ValueError(problem)
        return text


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(examples=["keyCompromise"], description="RFC 5280 CRLReason name")
    invalidity_date: dt.datetime | None = None


def _department(d: Department) -> dict[str, Any]:
    return {"code": d.code, "name": d.name, "name_en": d.name_en, "created_at": d.created_at,
            "disabled": d.disabled_at is not None}


def _certificate(row: IssuedCertificate) -> dict[str, Any]:
    return {
        "serial": row.serial, "profile": row.profile, "issuer": row.issuer, "subject": row.subject,
        "department": row.department_code, "key": f"{row.key_name}:v{row.key_version}",
        "not_before": row.not_before, "not_after": row.not_after, "revoked_at": row.revoked_at,
        "revocation_reason": row.revocation_reason,
    }


def _own(principal: Principal, code: str) -> None:
    if not principal.is_admin and principal.department != code:
        raise Forbidden(f"you act for department {principal.department}, not {code}")


@router.post("/departments", status_code=201, summary="Register a department and certify its seal key")
def add(body: DepartmentIn, principal: Admin, session: SessionDep, authority: AuthorityDep) -> dict[str, Any]:
    department, seal = authority.add_department(session, body.code, body.name, name_en=body.name_en,
                                                             actor=principal.subject)
    return {**_department(department), "seal": _certificate(seal)}


@router.get("/departments", summary="List departments")
def list_all(principal: Reading, session: SessionDep, include_disabled: bool = False) -> dict[str, Any]:
    return {"items": [_department(d) for d in registry.list_departments(session, include_disabled=include_disabled)]}


@router.post("/departments/{code}/disable", summary="Disable a department (no new seals or licences)")
def disable(code: str, principal: Admin, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    return _department(registry.disable_department(session, code, actor=principal.subject, now=runtime.clock.now()))


@router.get("/departments/{code}/seals", summary="A department's seal certificates, newest first")
def seals(code: str, principal: Reading, session: SessionDep) -> dict[str, Any]:
    _own(principal, code)
    registry.get_department(session, code)
    return {"items": [_certificate(row) for row in list_seals(session, code)]}


@router.post("/departments/{code}/seals", status_code=201,
             summary="Renew the seal: rotate the Vault key and certify the new version (the old stays valid)")
def renew(code: str, principal: Admin, session: SessionDep, authority: AuthorityDep) -> dict[str, Any]:
    return _certificate(authority.renew_seal(session, code, actor=principal.subject))


@router.post("/departments/{code}/seals/csr", status_code=201,
             summary="Certify a seal key the department holds itself (PKCS#10 CSR, PEM)")
def from_csr(code: str, principal: Admin, session: SessionDep, authority: AuthorityDep,
             csr: Annotated[str, Body(media_type="application/pkcs10", max_length=16384)]) -> dict[str, Any]:
    return _certificate(authority.seal_from_csr(session, code, csr.encode(), actor=principal.subject))


@router.post("/certificates/{serial}/revoke", summary="Revoke a certificate issued by ecert (RFC 5280 reason)")
def revoke(serial: str, body: RevokeIn, principal: Admin, session: SessionDep, authority: AuthorityDep) -> dict[str, Any]:
    row = authority.revoke(session, serial, body.reason, actor=principal.subject,
                                        invalidity_date=body.invalidity_date)
    return _certificate(row)

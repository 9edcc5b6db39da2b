"""Public PKI endpoints: CA certificates, CRLs, the OCSP responder and the time-stamping authority.

These speak their protocols' own media types (RFC 2585, RFC 6960, RFC 3161); malformed OCSP and
TSA requests get the protocol's error response, never a problem document or a 500.
"""

from __future__ import annotations

import base64
import logging
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import AuthorityDep, RuntimeDep, SessionDep
from api.problems import register_problem_type
from ca import errors as ca_errors
from ca.ocsp import MAX_REQUEST_BYTES as OCSP_MAX
from ca.seals import seal_history
from ca.service import NoSealCertificate
from ca.tsa import MAX_REQUEST_BYTES as TSA_MAX
from ecert.clock import as_utc
from ecert.errors import InvalidInput
from identity.tokens import DEFAULT_KEY_NAME, kid_for
from keys import KeyNotFound, KeyRef

log = logging.getLogger(__name__)
router = APIRouter(prefix="/pki", tags=["pki"])

for _error in (ca_errors.ProfileViolation, ca_errors.InvalidCsr, ca_errors.UnknownDepartment, ca_errors.DepartmentDisabled,
               ca_errors.DuplicateDepartment, ca_errors.UnknownCertificate, ca_errors.AlreadyRevoked,
               ca_errors.InvalidRevocationReason, ca_errors.UnknownAuthority, ca_errors.HierarchyNotReady, NoSealCertificate):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

CaName = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,32}$")]
_OCSP_TYPE = "application/ocsp-response"


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (read no further than that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/ca/{name}.crt", summary="A CA certificate (DER)", response_class=Response)
def ca_certificate(name: CaName, authority: AuthorityDep) -> Response:
    cert = authority.ca_certificate(name)
    return Response(cert.public_bytes(serialization.Encoding.DER), media_type="application/pkix-cert",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/ca/{name}.pem", summary="A CA certificate (PEM)", response_class=Response)
def ca_certificate_pem(name: CaName, authority: AuthorityDep) -> Response:
    cert = authority.ca_certificate(name)
    return Response(cert.public_bytes(serialization.Encoding.PEM), media_type="application/x-pem-file",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/chain.pem", summary="The issuing CA and the root (PEM), the chain for every seal", response_class=Response)
def chain_pem(authority: AuthorityDep) -> Response:
    hierarchy = authority.hierarchy()
    pem = hierarchy.issuing.pem + hierarchy.root.pem
    return Response(pem, media_type="application/x-pem-file", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/crl/{name}.crl", summary="The CA's current CRL (DER)", response_class=Response)
def crl(name: CaName, authority: AuthorityDep) -> Response:
    der = authority.crl(name)
    return Response(der, media_type="application/pkix-crl", headers={"Cache-Control": "public, max-age=60"})


def _ocsp_response(der: bytes) -> Response:
    return Response(der, media_type=_OCSP_TYPE, headers={"Cache-Control": "public, max-age=60"})


@router.post("/ocsp", summary="OCSP responder (RFC 6960, POST)", response_class=Response)
async def ocsp_post(request: Request, authority: AuthorityDep) -> Response:
    body = await _body(request, OCSP_MAX)
    return _ocsp_response(await run_in_threadpool(authority.ocsp, body or b""))


@router.get("/ocsp/{encoded:path}", summary="OCSP responder (RFC 6960, GET with the base64 request in the path)",
            response_class=Response)
def ocsp_get(encoded: str, authority: AuthorityDep) -> Response:
    try:
        der = base64.b64decode(encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    return _ocsp_response(authority.ocsp(der[: OCSP_MAX + 1]))


@router.post("/tsa", summary="Time-stamping authority (RFC 3161 over HTTP)", response_class=Response)
async def tsa(request: Request, authority: AuthorityDep) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip() not in ("application/timestamp-query", ""):
        raise InvalidInput("send a DER TimeStampReq as application/timestamp-query")
    body = await _body(request, TSA_MAX)
    reply = await run_in_threadpool(authority.tsa_respond, body or b"")
    return Response(reply, media_type="application/timestamp-reply")


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _versions(runtime: Any, name: str, kid: Callable[[int], str]) -> list[dict[str, Any]]:
    """A service key's versions with the window each one signed in (until the next version appeared)."""
    try:
        info = runtime.keystore.key_info(name)
    except KeyNotFound:
        return []
    ordered = sorted(info.versions.values(), key=lambda v: v.version)
    return [{"kid": kid(v.version), "created_at": v.created_at.isoformat(),
             "signed_until": ordered[i + 1].created_at.isoformat() if i + 1 < len(ordered) else None}
            for i, v in enumerate(ordered)]


@router.get("/key-history", summary="Every seal and signing key with its validity window and any compromise date")
def key_history(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """What verifiers need to judge a signature by its signing time: a licence sealed before a key's
    compromise (``invalidity_date``, else ``revoked_at``) stays genuine; one sealed after it does not."""
    seals = [
        {"kid": f"{row.key_name}:v{row.key_version}", "department": row.department_code, "serial": row.serial,
         "not_before": _iso(row.not_before), "not_after": _iso(row.not_after), "revoked_at": _iso(row.revoked_at),
         "reason": row.revocation_reason, "invalidity_date": _iso(row.invalidity_date),
         "certificate": base64.b64encode(row.certificate_der).decode()}
        for row in seal_history(session)
    ]
    return {
        "generated_at": runtime.clock.now().isoformat(),
        "seals": seals,
        "token_keys": _versions(runtime, DEFAULT_KEY_NAME, lambda v: kid_for(KeyRef(DEFAULT_KEY_NAME, v))),
        "status_list_keys": _versions(runtime, "status-list", lambda v: f"status-list:v{v}"),
        "trust_bundle_keys": _versions(runtime, "trust-bundle", lambda v: f"trust-bundle:v{v}"),
        "transparency_log_keys": _versions(runtime, "transparency-log", lambda v: f"transparency-log:v{v}"),
    }

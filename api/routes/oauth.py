"""OAuth 2.0 endpoints: the token endpoint (client credentials), the JWKS and token verification.

The token endpoint answers errors in OAuth's own JSON (RFC 6749 §5.2), not problem+json, since
OAuth clients parse that. ``/api/v1/identity/verify`` is introspection shaped (RFC 7662).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import JSONResponse
from jose.exceptions import JOSEError
from starlette.concurrency import run_in_threadpool

from sqlmodel import Session

from api.deps import RuntimeDep, SessionDep, TokensDep, container_of
from api.problems import outage_of, register_problem_type
from api.security import Principal, require_scopes
from ecert.errors import InvalidInput, ServiceUnavailable
from ecert.runtime import Runtime
from identity import clients, counter, oidc, scopes
from identity.grants import InvalidClient, InvalidRequest, OAuthError, UnsupportedGrantType, client_credentials_grant
from identity.tokens import AccessTokens, InvalidToken

__all__ = ["router"]

for _error in (clients.UnknownClient, clients.ClientDisabled, scopes.UnknownScope):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

log = logging.getLogger(__name__)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_VERIFY_BODY = 16 * 1024


router = APIRouter(tags=["identity"])
Verifying = Annotated[Principal, Depends(require_scopes("identity:verify"))]


def _oauth_error(exc: OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status == 401:  # RFC 6749 §5.2: invalid_client answers with a challenge
        headers["WWW-Authenticate"] = 'Basic realm="ecert"'
    return JSONResponse({"error": exc.error, "error_description": exc.detail}, status_code=exc.status, headers=headers)


def _temporarily_unavailable(outage: ServiceUnavailable) -> ServiceUnavailable:
    """A Vault outage at the token endpoint: a 503 problem (Retry-After) that OAuth clients also read,
    with ``error`` = ``temporarily_unavailable`` (RFC 6749 §4.1.2.1); no token was issued."""
    outage.headers = dict(_NO_STORE)  # type: ignore[attr-defined]
    outage.extensions.setdefault("error", "temporarily_unavailable")
    outage.extensions.setdefault("error_description", outage.detail)
    return outage


def _credentials(authorization: str | None, client_id: str | None, client_secret: str | None) -> tuple[str, str]:
    """client_secret_basic (RFC 6749 §2.3.1: form-encoded, then Basic) or client_secret_post; never both."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        if client_secret is not None:
            raise InvalidRequest("use one client authentication method, not two")
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidClient("malformed Basic credentials") from exc
        if not sep or (client_id is not None and client_id != unquote_plus(user)):
            raise InvalidClient("malformed Basic credentials")
        return unquote_plus(user), unquote_plus(password)
    if client_id and client_secret:
        return client_id, client_secret
    raise InvalidClient("send client credentials (HTTP Basic or client_id and client_secret)")


def _client_auth(authorization: str | None, client_id: str | None, client_secret: str | None) -> tuple[str | None, str | None]:
    """Like :func:`_credentials`, but a public client (PKCE) may send its client_id alone."""
    if (authorization or "").lower().startswith("basic ") or client_secret is not None:
        return _credentials(authorization, client_id, client_secret)
    return client_id, None


@router.post(
    "/oauth/token",
    summary="OAuth 2.0 token endpoint (client_credentials, authorization_code with PKCE, refresh_token)",
    responses={400: {"description": "RFC 6749 error JSON"}, 401: {"description": "invalid_client"}},
)
def token(
    session: SessionDep,
    runtime: RuntimeDep, tokens: TokensDep,
    authorization: Annotated[str | None, Header()] = None,
    grant_type: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    code: Annotated[str | None, Form()] = None,
    redirect_uri: Annotated[str | None, Form()] = None,
    code_verifier: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    now, tokens = runtime.clock.now(), tokens
    try:
        if grant_type == "client_credentials":
            cid, secret = _credentials(authorization, client_id, client_secret)
            issued = client_credentials_grant(session, tokens, client_id=cid, client_secret=secret, scope=scope, now=now)
            body: dict[str, Any] = {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.expires_in,
                                    "scope": issued.scope}
        elif grant_type == "authorization_code":
            party_id, party_secret = _client_auth(authorization, client_id, client_secret)
            body = oidc.exchange_code(session, tokens, client_id=party_id, client_secret=party_secret, code=code,
                                      redirect_uri=redirect_uri, code_verifier=code_verifier, now=now).as_dict()
        elif grant_type == "refresh_token":
            party_id, party_secret = _client_auth(authorization, client_id, client_secret)
            body = oidc.refresh(session, tokens, client_id=party_id, client_secret=party_secret, refresh_token=refresh_token,
                                scope=scope, now=now).as_dict()
        elif grant_type:
            raise UnsupportedGrantType("grant_type must be client_credentials, authorization_code or refresh_token")
        else:
            raise InvalidRequest("grant_type is missing")
    except OAuthError as exc:
        return _oauth_error(exc)  # returned, not raised: the failed-auth (or token reuse) audit event commits
    except (ServiceUnavailable, JOSEError) as exc:
        outage = outage_of(exc)
        if outage is None:
            raise
        raise _temporarily_unavailable(outage) from exc  # raised: the request's transaction rolls back
    session.commit()  # before answering, so the client can use a refresh token at once (FastAPI commits after sending)
    return JSONResponse(body, headers=_NO_STORE)


@router.get("/.well-known/jwks.json", summary="Public keys that verify ecert's tokens (JWK Set)")
def jwks(tokens: TokensDep) -> JSONResponse:
    keys = tokens.keys.jwks()
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})


@router.get("/.well-known/oauth-authorization-server", summary="OAuth 2.0 authorization server metadata (RFC 8414)")
def metadata(tokens: TokensDep) -> JSONResponse:
    return JSONResponse(server_metadata(tokens.issuer), headers={"Cache-Control": "public, max-age=3600"})


def server_metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata of the token endpoint; OpenID Connect discovery adds to it (api/routes/oidc.py)."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(scopes.SCOPES),
        "introspection_endpoint": f"{issuer}/api/v1/identity/verify",
    }


async def _token_field(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_VERIFY_BODY:
        return ""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError:
            return ""
        value = data.get("token") if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""
    values = parse_qs(body.decode("utf-8", "replace")).get("token") or [""]
    return values[0]


def _introspection(claims: dict[str, Any], principal: Principal) -> dict[str, Any]:
    answer = {"active": True, "token_type": "Bearer", "kind": principal.kind}
    for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "acr", "dept", "auth_time", "sid"):
        if name in claims:
            answer[name] = claims[name]
    return answer


@router.post(
    "/api/v1/identity/verify",
    summary="Check a token (RFC 7662 introspection shape): form or JSON field `token`",
    openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"]}}}}},
)
async def verify(request: Request, caller: Verifying) -> JSONResponse:
    token = await _token_field(request)
    if not token:
        raise InvalidInput("send the token to check in the field `token`")
    return JSONResponse(await introspect(request.app.state.runtime, container_of(request).tokens, token), headers=_NO_STORE)


def _account_token_state(runtime: Runtime, token: str, jti: str | None) -> dict[str, Any] | None:
    """For tokens issued to accounts: None if revoked (RFC 7009); for opaque refresh tokens their state."""
    with Session(runtime.engine) as session:
        if jti is not None:
            return None if oidc.is_revoked(session, jti) else {}
        return oidc.refresh_token_active(session, token, now=runtime.clock.now())


def _counter_qr_state(runtime: Runtime, tokens: AccessTokens, token: str) -> dict[str, Any]:
    """A counter QR's signature and lifetime (whether a counter has used it is the counter's business)."""
    try:
        claims = counter.check_qr(tokens, token, now=runtime.clock.now())
    except counter.QrRejected:
        return {"active": False}
    return {"active": True, "token_type": "counter_qr", "kind": "person", "sub": claims.account_id, "acr": claims.acr,
            "jti": claims.jti, "exp": int(claims.expires_at.timestamp()), "iss": tokens.issuer}


async def introspect(runtime: Runtime, tokens: AccessTokens, token: str) -> dict[str, Any]:
    """RFC 7662 answer for any token of ours: access tokens from their signature (and, for tokens issued
    to people, the revocation list), refresh tokens from the database. ``{"active": false}`` otherwise."""
    try:
        verified = tokens.verify(token)
    except InvalidToken:
        if token.count(".") == 2:  # maybe a counter QR
            return _counter_qr_state(runtime, tokens, token)
        if token.count(".") == 0 and 20 < len(token) < 100:  # maybe a refresh token
            state = await run_in_threadpool(_account_token_state, runtime, token, None)
            return state or {"active": False}
        return {"active": False}
    if verified.account_kind is not None and (
            await run_in_threadpool(_account_token_state, runtime, token, verified.claims.get("jti")) is None):
        return {"active": False}
    return _introspection(dict(verified.claims), Principal.from_token(verified))

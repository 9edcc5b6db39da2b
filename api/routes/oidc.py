"""OpenID Connect provider endpoints: discovery, authorization (code + PKCE S256), userinfo,
revocation (RFC 7009) and introspection (RFC 7662). The token endpoint is ``/oauth/token``
(api/routes/oauth.py), the keys ``/.well-known/jwks.json``.

Registered platform applications are first-party for signing in (``openid``, ``profile``): a
logged-in person is not asked again. Any other scope (``licences:own``) needs the person's standing
consent (:mod:`identity.consents`): the authorization endpoint shows a consent screen (zh/en) until
it is granted, and remembers the grant. An unknown client or redirect URI gets an error page, never
a redirect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from api.deps import RuntimeDep, SessionDep, TokensDep, container_of
from api.problems import register_problem_type
from api.routes.oauth import _NO_STORE, _client_auth, _oauth_error, introspect, server_metadata
from api.routes.disclosures import TEXT  # noqa: F401 - the consent screen's texts
from api.routes.portal import portal_session
from api.security import bearer_token
from api.web import render
from ecert.errors import InvalidInput
from ecert.runtime import Runtime
from identity import consents, oidc
from identity.accounts import ACR_LEVELS
from identity.grants import OAuthError
from identity.models import LoginSession, RelyingParty
from identity.tokens import InvalidToken

__all__ = ["router"]

for _error in (oidc.InvalidGrant,):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

router = APIRouter(tags=["identity"])


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
def discovery(tokens: TokensDep) -> JSONResponse:
    issuer = tokens.issuer
    body = {
        **server_metadata(issuer),
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": list(oidc.OIDC_SCOPES),
        "claims_supported": ["sub", "name", "account_kind", "assurance", "acr", "amr", "auth_time", "sid", "nonce"],
        "acr_values_supported": list(ACR_LEVELS),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


_REQUEST_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
                   "code_challenge_method")


def _check(session: Session, params: Mapping[str, str | None]) -> oidc.AuthorizationRequest:
    return oidc.check_authorization_request(session, **{name: params.get(name) for name in _REQUEST_PARAMS})


@router.get("/oauth/authorize", summary="Authorization endpoint (code flow, PKCE S256 required)")
def authorize(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    q = request.query_params
    try:
        checked = _check(session, q)
    except InvalidInput as exc:  # no trusted redirect URI: tell the person, not the (unknown) client
        return render(request, "message.html", status_code=400, detail=exc.detail)
    except OAuthError as exc:
        return _back(q.get("redirect_uri") or "", {"error": exc.error, "error_description": exc.detail, "state": q.get("state")})
    current = portal_session(request, session, runtime)
    wanted = ACR_LEVELS.get(q.get("acr_values", "").split(" ")[0], 0)
    if current is None or ACR_LEVELS.get(current.acr, 0) < wanted or q.get("prompt") == "login":
        if q.get("prompt") == "none":
            return _back(checked.redirect_uri, {"error": "login_required", "state": checked.state})
        next_url = "/oauth/authorize?" + urlencode([(k, v) for k, v in q.multi_items() if k != "prompt"])
        return RedirectResponse("/portal/login?" + urlencode({"next": next_url}), status_code=303)
    if consents.needed(session, current.account_id, checked.client.client_id, checked.scope):
        if q.get("prompt") == "none":
            return _back(checked.redirect_uri, {"error": "consent_required", "state": checked.state})
        return _consent_screen(request, session, checked, q)
    return _code(request, session, runtime, checked, current)


def _code(request: Request, session: Session, runtime: Runtime, checked: oidc.AuthorizationRequest,
          current: LoginSession) -> Response:
    code = oidc.issue_code(session, checked, current, now=runtime.clock.now())
    session.commit()  # the client redeems the code at once; FastAPI would commit only after sending
    return _back(checked.redirect_uri, {"code": code, "state": checked.state, "iss": container_of(request).tokens.issuer})


def _consent_screen(request: Request, session: Session, checked: oidc.AuthorizationRequest,
                    params: Mapping[str, str]) -> Response:
    party = session.get(RelyingParty, checked.client.client_id)
    assert party is not None
    hidden = [(name, params[name]) for name in (*_REQUEST_PARAMS, "acr_values") if params.get(name)]
    return render(request, "consent.html", app_name=party.name, scopes=checked.scope, purpose=consents.purpose_of(party),
                  params=hidden)


@router.post("/oauth/authorize/consent", include_in_schema=False)
def consent_submit(
    request: Request, session: SessionDep, runtime: RuntimeDep, decision: Annotated[str, Form(max_length=8)],
    client_id: Annotated[str, Form(max_length=64)], redirect_uri: Annotated[str, Form(max_length=1000)],
    response_type: Annotated[str, Form(max_length=16)], scope: Annotated[str, Form(max_length=1000)],
    code_challenge: Annotated[str, Form(max_length=128)], code_challenge_method: Annotated[str, Form(max_length=8)],
    state: Annotated[str | None, Form(max_length=1000)] = None, nonce: Annotated[str | None, Form(max_length=1000)] = None,
    acr_values: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """The consent screen's answer: a same-origin POST (the SameSite=Lax session cookie does not cross sites)."""
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": response_type, "scope": scope,
              "state": state, "nonce": nonce, "code_challenge": code_challenge, "code_challenge_method": code_challenge_method,
              "acr_values": acr_values}
    try:
        checked = _check(session, params)
    except InvalidInput as exc:
        return render(request, "message.html", status_code=400, detail=exc.detail)
    except OAuthError as exc:
        return _back(redirect_uri, {"error": exc.error, "error_description": exc.detail, "state": state})
    current = portal_session(request, session, runtime)
    if current is None or ACR_LEVELS.get(current.acr, 0) < ACR_LEVELS.get((acr_values or "").split(" ")[0], 0):
        next_url = "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v})
        return RedirectResponse("/portal/login?" + urlencode({"next": next_url}), status_code=303)
    if decision != "allow":
        return _back(checked.redirect_uri, {"error": "access_denied", "error_description": "the person declined",
                                            "state": checked.state})
    party = session.get(RelyingParty, checked.client.client_id)
    assert party is not None
    consents.grant(session, party, account_id=current.account_id, scopes=checked.scope, now=runtime.clock.now())
    return _code(request, session, runtime, checked, current)


def _back(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(redirect_uri + ("&" if "?" in redirect_uri else "?") + query, status_code=302)


@router.api_route("/oauth/userinfo", methods=["GET", "POST"], summary="Claims about the signed-in person")
async def userinfo(request: Request, session: SessionDep, tokens: TokensDep) -> JSONResponse:
    challenge = {"WWW-Authenticate": 'Bearer realm="ecert", error="invalid_token"'}
    try:
        verified = tokens.verify(bearer_token(request))
    except (InvalidToken, InvalidInput) as exc:
        return JSONResponse({"error": "invalid_token", "error_description": str(exc)}, status_code=401, headers=challenge)
    except Exception as exc:  # BearerRequired (no token at all)
        headers = getattr(exc, "headers", challenge)
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, status_code=401, headers=headers)
    if verified.account_kind != "person" or "openid" not in verified.scopes or oidc.is_revoked(session, verified.claims.get("jti")):
        return JSONResponse({"error": "invalid_token", "error_description": "not a person's OpenID token"}, status_code=401,
                            headers=challenge)
    try:
        return JSONResponse(oidc.userinfo(session, verified.subject, verified.scopes), headers=_NO_STORE)
    except OAuthError as exc:
        return JSONResponse({"error": "invalid_token", "error_description": exc.detail}, status_code=401, headers=challenge)


@router.post("/oauth/revoke", summary="Token revocation (RFC 7009)")
def revoke(
    session: SessionDep, runtime: RuntimeDep, tokens: TokensDep, token: Annotated[str, Form(max_length=8192)],
    authorization: Annotated[str | None, Header()] = None, client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None, token_type_hint: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        cid, secret = _client_auth(authorization, client_id, client_secret)
        oidc.revoke(session, tokens, client_id=cid, client_secret=secret, token=token, now=runtime.clock.now())
    except OAuthError as exc:
        return _oauth_error(exc)
    session.commit()
    return Response(status_code=200, headers=_NO_STORE)


@router.post("/oauth/introspect", summary="Token introspection (RFC 7662) for relying parties")
async def introspection(
    request: Request, session: SessionDep, runtime: RuntimeDep, token: Annotated[str, Form(max_length=8192)],
    authorization: Annotated[str | None, Header()] = None, client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    try:
        cid, secret = _client_auth(authorization, client_id, client_secret)
        party = oidc.authenticate_party(session, cid, secret)
        if party.secret_hash is None:
            raise oidc.UnauthorizedClient("public clients cannot introspect")
    except OAuthError as exc:
        return _oauth_error(exc)
    answer = await introspect(runtime, container_of(request).tokens, token)
    if answer.get("active") and answer.get("client_id") != party.client_id:
        answer = {"active": False}  # a relying party learns only about its own tokens
    return JSONResponse(answer, headers=_NO_STORE)

"""OpenID Connect provider, without HTTP: relying parties, authorization codes with PKCE (S256
only), ID and access tokens, refresh tokens with rotation and reuse detection, revocation.

Codes and refresh tokens are 256-bit random strings stored only as keyed hashes. A refresh
token is used once: using it returns a new one of the same family; presenting a used one again
(a stolen copy, or the thief's copy after the owner used it) revokes the whole family and is
audited as ``identity.token.refresh-reuse``. Errors are :class:`identity.grants.OAuthError`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from audit.trail import record_event
from ecert.clock import as_utc
from ecert.errors import InvalidInput
from certificates.access_log import parse_purpose
from identity import consents
from identity.grants import InvalidClient, InvalidRequest, InvalidScope, OAuthError, UnauthorizedClient
from identity.models import Account, AuthorizationCode, LoginSession, RefreshToken, RelyingParty, RevokedToken
from identity.once import claim
from identity.passwords import keyed_hash
from identity.scopes import format_scopes, parse_scopes
from identity.tokens import AccessTokens, InvalidToken

__all__ = [
    "OIDC_SCOPES",
    "ID_TOKEN_TYPE",
    "InvalidGrant",
    "UnauthorizedClient",
    "RelyingPartyView",
    "NewRelyingParty",
    "TokenSet",
    "AuthorizationRequest",
    "register_relying_party",
    "check_authorization_request",
    "issue_code",
    "exchange_code",
    "refresh",
    "revoke",
    "is_revoked",
    "refresh_token_active",
    "userinfo",
]

OIDC_SCOPES = {"openid": "sign in (an ID token)", "profile": "name, account kind and assurance level",
               "licences:own": "read the signed-in holder's own e-licences"}
ID_TOKEN_TYPE = "JWT"
CODE_LIFETIME = dt.timedelta(minutes=2)
REFRESH_LIFETIME = dt.timedelta(days=30)
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class InvalidGrant(OAuthError):
    slug = "oauth-invalid-grant"
    title = "The grant (code or refresh token) is invalid, expired, used or revoked"
    error = "invalid_grant"


@dataclass(frozen=True)
class RelyingPartyView:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    confidential: bool

    def as_dict(self) -> dict[str, object]:
        return {"client_id": self.client_id, "name": self.name, "redirect_uris": list(self.redirect_uris),
                "scopes": list(self.scopes), "confidential": self.confidential}


@dataclass(frozen=True)
class NewRelyingParty:
    party: RelyingPartyView
    secret: str | None

    def __repr__(self) -> str:
        return f"NewRelyingParty({self.party!r}, secret=[redacted])"


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str
    id_token: str | None

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in,
                                   "scope": self.scope, "refresh_token": self.refresh_token}
        if self.id_token:
            body["id_token"] = self.id_token
        return body

    def __repr__(self) -> str:
        return f"TokenSet(scope={self.scope!r}, [redacted])"


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request: safe to redirect errors to ``redirect_uri``."""

    client: RelyingPartyView
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str


def _view(row: RelyingParty) -> RelyingPartyView:
    return RelyingPartyView(row.client_id, row.name, tuple(row.redirect_uris.split()), parse_scopes(row.scopes),
                            row.secret_hash is not None)


def _check_redirect(uri: str) -> str:
    parts = urlsplit(uri)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.fragment or not parts.netloc or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise InvalidInput(f"redirect URI {uri!r}: absolute https (http only for localhost), no fragment")
    return uri


def register_relying_party(
    session: Session, *, name: str, redirect_uris: Sequence[str], scopes: Sequence[str] = ("openid", "profile"),
    confidential: bool = True, actor: str, now: dt.datetime, purpose: str | None = None,
) -> NewRelyingParty:
    """A platform app; ``purpose`` (a purpose code or short text) is shown on the consent screen and
    recorded with every licence it reads under a standing consent."""
    declared = parse_purpose(purpose) if purpose else None
    uris = [_check_redirect(u.strip()) for u in redirect_uris if u.strip()]
    wanted = parse_scopes(" ".join(scopes))
    if not uris or "openid" not in wanted or any(s not in OIDC_SCOPES for s in wanted):
        raise InvalidInput(f"a relying party needs redirect URIs and scopes among {', '.join(OIDC_SCOPES)} (with openid)")
    client_id = "rp_" + secrets.token_hex(10)
    secret = secrets.token_urlsafe(32) if confidential else None
    row = RelyingParty(client_id=client_id, name=name.strip()[:200], redirect_uris="\n".join(uris), scopes=format_scopes(wanted),
                       secret_hash=keyed_hash("rp", client_id, secret) if secret else None, created_at=now, created_by=actor,
                       purpose=(declared.text or declared.code) if declared else None)
    session.add(row)
    session.flush()
    record_event(session, action="identity.rp.create", actor=actor, target=f"client:{client_id}",
                 details={"name": row.name, "redirect_uris": uris, "confidential": confidential}, at=now)
    return NewRelyingParty(_view(row), secret)


def _party(session: Session, client_id: str | None) -> RelyingParty | None:
    row = session.get(RelyingParty, client_id) if client_id and client_id.startswith("rp_") and len(client_id) < 64 else None
    return row if row is not None and row.disabled_at is None else None


def check_authorization_request(
    session: Session, *, client_id: str | None, redirect_uri: str | None, response_type: str | None, scope: str | None,
    state: str | None, nonce: str | None, code_challenge: str | None, code_challenge_method: str | None,
) -> AuthorizationRequest:
    """The request, or InvalidInput (do not redirect: unknown client or URI) or OAuthError (redirect it)."""
    row = _party(session, client_id)
    if row is None:
        raise InvalidInput("unknown client_id")
    party = _view(row)
    if redirect_uri not in party.redirect_uris:  # exact string match (RFC 9700 §4.1.3)
        raise InvalidInput("redirect_uri is not registered for this client")
    if response_type != "code":
        raise UnsupportedResponseType("response_type must be code")
    requested = parse_scopes(scope)
    if "openid" not in requested or any(s not in party.scopes for s in requested):
        raise InvalidScope(f"scope must include openid and stay within: {' '.join(party.scopes)}")
    if code_challenge_method != "S256" or not code_challenge or not _CHALLENGE.match(code_challenge):
        raise InvalidRequest("PKCE is required: code_challenge with code_challenge_method=S256")
    return AuthorizationRequest(party, redirect_uri, requested, state, (nonce or None) and nonce[:256], code_challenge)


class UnsupportedResponseType(OAuthError):
    slug = "oauth-unsupported-response-type"
    title = "Only the code response type is supported"
    error = "unsupported_response_type"


def issue_code(session: Session, request: AuthorizationRequest, login: LoginSession, *, now: dt.datetime) -> str:
    code = secrets.token_urlsafe(32)
    session.add(AuthorizationCode(
        code_hash=keyed_hash("code", code), client_id=request.client.client_id, account_id=login.account_id,
        session_id=login.id, redirect_uri=request.redirect_uri, scope=format_scopes(request.scope), nonce=request.nonce,
        code_challenge=request.code_challenge, acr=login.acr, auth_time=login.created_at, expires_at=now + CODE_LIFETIME,
    ))
    session.flush()
    return code


def authenticate_party(session: Session, client_id: str | None, secret: str | None) -> RelyingParty:
    """A confidential client must send its secret; a public one must not (PKCE protects it)."""
    row = _party(session, client_id)
    expected = (row.secret_hash if row is not None else None) or keyed_hash("rp", "none", "none")
    presented = keyed_hash("rp", client_id or "", secret or "")
    ok = secrets.compare_digest(presented, expected)
    if row is None or (row.secret_hash is not None and not ok) or (row.secret_hash is None and secret):
        raise InvalidClient("client authentication failed")
    return row


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def exchange_code(
    session: Session, tokens: AccessTokens, *, client_id: str | None, client_secret: str | None, code: str | None,
    redirect_uri: str | None, code_verifier: str | None, now: dt.datetime,
) -> TokenSet:
    party = authenticate_party(session, client_id, client_secret)
    row = session.get(AuthorizationCode, keyed_hash("code", code or ""))
    if row is None or row.client_id != party.client_id or as_utc(row.expires_at) <= now:
        raise InvalidGrant("the code is unknown or expired")
    if row.used_at is not None:
        raise _replayed_code(session, row, now=now)
    if row.redirect_uri != redirect_uri:
        raise InvalidGrant("redirect_uri differs from the authorization request")
    if not code_verifier or not _VERIFIER.match(code_verifier) or not secrets.compare_digest(_s256(code_verifier), row.code_challenge):
        raise InvalidGrant("the PKCE code_verifier does not match")
    if not claim(session, AuthorizationCode, col(AuthorizationCode.code_hash) == row.code_hash,
                 col(AuthorizationCode.used_at).is_(None), values={"used_at": now}):
        raise _replayed_code(session, row, now=now)  # a concurrent request redeemed it first
    if consents.needed(session, row.account_id, party.client_id, parse_scopes(row.scope)):
        raise InvalidGrant("the holder's consent to this scope was revoked")
    account = session.get(Account, row.account_id)
    assert account is not None
    family = "fam_" + secrets.token_hex(8)
    return _issue(session, tokens, account, client_id=party.client_id, scope=row.scope, acr=row.acr, session_id=row.session_id,
                  auth_time=as_utc(row.auth_time), family=family, nonce=row.nonce, id_token=True, now=now,
                  grant="authorization_code", code_hash=row.code_hash)


def _replayed_code(session: Session, code: AuthorizationCode, *, now: dt.datetime) -> InvalidGrant:
    """A code used twice: revoke the tokens it gave (RFC 6749 §4.1.2); the error to raise."""
    _revoke_family_of_code(session, code, now=now)
    return InvalidGrant("the code was already used")


def _revoke_family_of_code(session: Session, code: AuthorizationCode, *, now: dt.datetime) -> None:
    for token in session.exec(select(RefreshToken).where(RefreshToken.session_id == code.session_id,
                                                         RefreshToken.client_id == code.client_id)):
        if token.revoked_at is None:
            token.revoked_at = now
            session.add(token)
    record_event(session, action="identity.token.code-reuse", actor=f"client:{code.client_id}",
                 target=f"account:{code.account_id}", details={"session": code.session_id}, at=now)


def _issue(
    session: Session, tokens: AccessTokens, account: Account, *, client_id: str, scope: str, acr: str, session_id: str,
    auth_time: dt.datetime, family: str, nonce: str | None, id_token: bool, now: dt.datetime, grant: str,
    code_hash: str | None = None,
) -> TokenSet:
    extra = {"kind": "person", "sid": session_id, "auth_time": int(auth_time.timestamp())}
    access = tokens.issue(subject=account.id, scopes=parse_scopes(scope), client_id=client_id, department=None, acr=acr,
                          now=now, extra=extra)
    refresh_token = secrets.token_urlsafe(32)
    session.add(RefreshToken(
        token_hash=keyed_hash("refresh", refresh_token), family_id=family, client_id=client_id, account_id=account.id,
        session_id=session_id, scope=scope, acr=acr, auth_time=auth_time, issued_at=now, expires_at=now + REFRESH_LIFETIME,
    ))
    id_jwt = None
    if id_token:
        at_hash = base64.urlsafe_b64encode(hashlib.sha256(access.token.encode()).digest()[:16]).rstrip(b"=").decode()
        claims: dict[str, Any] = {
            "iss": tokens.issuer, "sub": account.id, "aud": client_id, "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + access.expires_in, "auth_time": int(auth_time.timestamp()), "acr": acr,
            "amr": ["pwd", "otp"] if acr == "pwd+totp" else (["pwd"] if acr == "pwd" else ["face"]),
            "sid": session_id, "at_hash": at_hash, "azp": client_id,
        }
        if nonce:
            claims["nonce"] = nonce
        id_jwt = tokens.sign(claims, ID_TOKEN_TYPE)
    session.flush()
    record_event(session, action="identity.token.issue", actor=f"account:{account.id}", target=f"account:{account.id}",
                 details={"jti": access.claims["jti"], "scope": scope, "grant": grant, "client": client_id, "acr": acr,
                          "family": family}, at=now)
    return TokenSet(access.token, access.expires_in, scope, refresh_token, id_jwt)


def refresh(
    session: Session, tokens: AccessTokens, *, client_id: str | None, client_secret: str | None, refresh_token: str | None,
    scope: str | None, now: dt.datetime,
) -> TokenSet:
    party = authenticate_party(session, client_id, client_secret)
    row = session.get(RefreshToken, keyed_hash("refresh", refresh_token or ""))
    if row is None or row.client_id != party.client_id:
        raise InvalidGrant("unknown refresh token")
    if row.rotated_at is not None and row.revoked_at is None:
        raise _reused(session, row, now=now)
    if row.revoked_at is not None or as_utc(row.expires_at) <= now:
        raise InvalidGrant("the refresh token is revoked or expired")
    login = session.get(LoginSession, row.session_id)
    if login is None or login.revoked_at is not None:
        raise InvalidGrant("the login session has ended")
    wanted = parse_scopes(scope) or parse_scopes(row.scope)
    if any(s not in parse_scopes(row.scope) for s in wanted):
        raise InvalidScope("a refresh cannot widen the scope")
    account = session.get(Account, row.account_id)
    if account is None or account.disabled_at is not None:
        raise InvalidGrant("the account is disabled")
    if consents.needed(session, row.account_id, row.client_id, wanted):
        raise InvalidGrant("the holder revoked their consent to this app")
    if not claim(session, RefreshToken, col(RefreshToken.token_hash) == row.token_hash, col(RefreshToken.rotated_at).is_(None),
                 col(RefreshToken.revoked_at).is_(None), values={"rotated_at": now}):
        session.refresh(row)  # a concurrent request rotated (or revoked) it first
        raise _reused(session, row, now=now) if row.revoked_at is None else InvalidGrant("the refresh token is revoked")
    return _issue(session, tokens, account, client_id=row.client_id, scope=format_scopes(wanted), acr=row.acr,
                  session_id=row.session_id, auth_time=as_utc(row.auth_time), family=row.family_id, nonce=None,
                  id_token="openid" in wanted, now=now, grant="refresh_token")


def _reused(session: Session, row: RefreshToken, *, now: dt.datetime) -> InvalidGrant:
    """A rotated refresh token presented again: revoke its whole family, audited; the error to raise."""
    _revoke_family(session, row.family_id, now=now)
    record_event(session, action="identity.token.refresh-reuse", actor=f"client:{row.client_id}",
                 target=f"account:{row.account_id}", details={"family": row.family_id}, at=now)
    return InvalidGrant("refresh token reused: the session's tokens are revoked")


def _revoke_family(session: Session, family: str, *, now: dt.datetime) -> None:
    for token in session.exec(select(RefreshToken).where(RefreshToken.family_id == family, col(RefreshToken.revoked_at).is_(None))):
        token.revoked_at = now
        session.add(token)
    session.flush()


def revoke(session: Session, tokens: AccessTokens, *, client_id: str | None, client_secret: str | None, token: str,
           now: dt.datetime) -> None:
    """RFC 7009: a refresh token ends its family; an access token is listed as revoked. Unknown tokens: no error."""
    party = authenticate_party(session, client_id, client_secret)
    row = session.get(RefreshToken, keyed_hash("refresh", token))
    if row is not None and row.client_id == party.client_id:
        _revoke_family(session, row.family_id, now=now)
        record_event(session, action="identity.token.revoke", actor=f"client:{party.client_id}",
                     target=f"account:{row.account_id}", details={"family": row.family_id, "type": "refresh_token"}, at=now)
        return
    try:
        claims = tokens.verify(token).claims
    except InvalidToken:  # not one of ours, or already expired: nothing to revoke (RFC 7009 §2.2)
        return
    if claims.get("client_id") == party.client_id and session.get(RevokedToken, claims["jti"]) is None:
        session.add(RevokedToken(jti=claims["jti"], expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc),
                                 revoked_at=now))
        record_event(session, action="identity.token.revoke", actor=f"client:{party.client_id}",
                     target=f"account:{claims['sub']}", details={"jti": claims["jti"], "type": "access_token"}, at=now)
        session.flush()


def is_revoked(session: Session, jti: str | None) -> bool:
    return jti is not None and session.get(RevokedToken, jti) is not None


def refresh_token_active(session: Session, token: str, *, now: dt.datetime) -> dict[str, Any] | None:
    """Introspection of a refresh token: its facts if it is live, else None."""
    row = session.get(RefreshToken, keyed_hash("refresh", token))
    if row is None or row.revoked_at or row.rotated_at or as_utc(row.expires_at) <= now:
        return None
    return {"active": True, "token_type": "refresh_token", "sub": row.account_id, "client_id": row.client_id,
            "scope": row.scope, "acr": row.acr, "exp": int(as_utc(row.expires_at).timestamp()), "kind": "person"}


def userinfo(session: Session, account_id: str, scopes: frozenset[str]) -> dict[str, Any]:
    account = session.get(Account, account_id)
    if account is None or account.disabled_at is not None:
        raise InvalidGrant("the account is gone")
    info: dict[str, Any] = {"sub": account.id}
    if "profile" in scopes:
        info.update({"name": account.name, "account_kind": account.kind, "assurance": account.assurance,
                     "updated_at": int(as_utc(account.proofed_at or account.created_at).timestamp())})
    return info

"""Access tokens: JWTs (RFC 9068 ``at+jwt``, ES256) signed by a Vault transit key through python-jose.

Signing is one Vault call (the private key never leaves Vault): :class:`VaultJoseKey` is a
python-jose ``Key`` whose ``sign()`` asks the key store for the raw r||s signature JWS needs.
Verification never calls Vault on the hot path: :class:`TokenKeys` caches every version's public
key by ``kid`` (``<key name>-v<version>``) and looks again only when a token names a newer version
than it knows, at most once per ``probe_interval``. After a rotation the old versions stay in
the JWKS, so tokens signed before it keep verifying until they expire.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws
from jose.backends.cryptography_backend import CryptographyECKey as ECKey  # the class jose.backends.ECKey names
from jose.backends.base import Key
from jose.exceptions import JOSEError

from ecert.clock import Clock
from ecert.errors import Unauthenticated
from keys import KeyInfo, KeyNotFound, KeyRef, KeyStore, KeyType
from identity.scopes import ADMIN_SCOPE, format_scopes, parse_scopes

__all__ = [
    "ALGORITHM",
    "ACCESS_TOKEN_TYPE",
    "DEFAULT_KEY_NAME",
    "AccessToken",
    "AccessTokens",
    "InvalidToken",
    "TokenKeys",
    "VaultJoseKey",
    "VerifiedToken",
    "kid_for",
]

ALGORITHM = "ES256"
ACCESS_TOKEN_TYPE = "at+jwt"
DEFAULT_KEY_NAME = "token-signing"
MAX_TOKEN_LENGTH = 8192
_KID = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*[a-z0-9])-v(?P<version>[1-9][0-9]{0,8})$")


class InvalidToken(Unauthenticated):
    """The bearer token is missing, malformed, forged, expired or not meant for us."""


def kid_for(key: KeyRef) -> str:
    """``token-signing-v3``: the key's name and version, so a verifier knows which key to use."""
    return f"{key.name}-v{key.version}"


def _jwk(public_key: ec.EllipticCurvePublicKey, kid: str) -> dict[str, str]:
    return {**ECKey(public_key, ALGORITHM).to_dict(), "kid": kid, "use": "sig"}


class VaultJoseKey(Key):
    """A python-jose signing key whose private half stays in Vault (one transit call per sign)."""

    def __init__(self, store: KeyStore, key: KeyRef, public_key: ec.EllipticCurvePublicKey) -> None:
        self._store = store
        self.key_ref = key
        self._public = ECKey(public_key, ALGORITHM)

    def sign(self, msg: bytes) -> bytes:
        digest = hashlib.sha256(msg).digest()
        signature = self._store.sign(self.key_ref, digest, hash_name="sha256", ec_format="raw")
        if signature.key != self.key_ref or len(signature.value) != 64:
            raise ValueError(f"Vault signed with {signature.key}, not {self.key_ref}")
        return signature.value

    def verify(self, msg: bytes, sig: bytes) -> bool:
        return bool(self._public.verify(msg, sig))

    def public_key(self) -> ECKey:  # type: ignore[override]  # jose's stubs say Self; the public half is a plain ECKey
        return self._public

    def to_pem(self) -> bytes:
        return bytes(self._public.to_pem())

    def to_dict(self) -> dict[str, str]:
        return dict(self._public.to_dict())

    def __repr__(self) -> str:
        return f"VaultJoseKey({self.key_ref})"


class TokenKeys:
    """The token-signing key in Vault: the signer (latest version) and every version's public key.

    ``refresh_interval`` bounds how long a rotation made by another process goes unnoticed for
    signing; ``probe_interval`` bounds how often a token naming an unknown newer version may make
    us ask Vault (so forged ``kid`` values cannot flood it).
    """

    def __init__(
        self, store: KeyStore, name: str = DEFAULT_KEY_NAME, *, refresh_interval: float = 60.0, probe_interval: float = 10.0
    ) -> None:
        self.store = store
        self.name = name
        self.refresh_interval = refresh_interval
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._info: KeyInfo | None = None
        self._verifiers: dict[str, ECKey] = {}
        self._checked_at = 0.0

    def _load(self, info: KeyInfo) -> KeyInfo:
        verifiers = {}
        for number, version in info.versions.items():
            public_key = version.public_key()
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            verifiers[kid_for(KeyRef(info.name, number))] = ECKey(public_key, ALGORITHM)
        self._verifiers, self._info, self._checked_at = verifiers, info, time.monotonic()
        return info

    def info(self) -> KeyInfo:
        """The key's versions; created in Vault (non-exportable P-256) on first use."""
        info = self._info
        if info is None:
            with self._lock:
                info = self._info or self._load(self.store.create(self.name, KeyType.EC_P256))
        return info

    def _look_for_newer(self) -> KeyInfo:
        """Ask the store whether another process rotated the key; reload if so."""
        with self._lock:
            info = self._info or self._load(self.store.create(self.name, KeyType.EC_P256))
            if time.monotonic() - self._checked_at < min(self.refresh_interval, self.probe_interval):
                return info
            try:
                self.store.public_key(KeyRef(self.name, info.latest_version + 1))
            except KeyNotFound:
                self._checked_at = time.monotonic()
                return info
            return self._load(self.store.key_info(self.name))

    def signer(self) -> VaultJoseKey:
        info = self.info()
        if time.monotonic() - self._checked_at >= self.refresh_interval:
            info = self._look_for_newer()
        public_key = info.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        return VaultJoseKey(self.store, info.latest, public_key)

    def verifier(self, kid: str) -> ECKey | None:
        """The public key a token's ``kid`` names, or None; no Vault call unless a newer version is named."""
        key = self._verifiers.get(kid)
        if key is not None:
            return key
        match = _KID.match(kid)
        if not match or match["name"] != self.name or int(match["version"]) <= self.info().latest_version:
            return None
        if time.monotonic() - self._checked_at >= self.probe_interval:
            self._look_for_newer()
        return self._verifiers.get(kid)

    def rotate(self) -> KeyInfo:
        """Add a version in Vault and sign with it from now on; earlier versions keep verifying."""
        self.info()
        rotated = self.store.rotate(self.name)
        with self._lock:
            return self._load(rotated)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every version's public key (newest first), the JWK Set verifiers fetch (RFC 7517 §5)."""
        info = self.info()
        keys = []
        for number in sorted(info.versions, reverse=True):
            public_key = info.public_key(number)
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            keys.append(_jwk(public_key, kid_for(KeyRef(info.name, number))))
        return {"keys": keys}


@dataclass(frozen=True)
class AccessToken:
    token: str
    claims: Mapping[str, Any]
    expires_in: int

    @property
    def scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def __repr__(self) -> str:
        return f"AccessToken(jti={self.claims.get('jti')!r}, sub={self.claims.get('sub')!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, issuer, audience and lifetime checked out."""

    claims: Mapping[str, Any]
    kid: str
    scopes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", frozenset(parse_scopes(self.claims.get("scope"))))

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def department(self) -> str | None:
        dept = self.claims.get("dept")
        return str(dept) if dept else None

    @property
    def client_id(self) -> str | None:
        value = self.claims.get("client_id")
        return str(value) if value else None

    @property
    def acr(self) -> str | None:
        value = self.claims.get("acr")
        return str(value) if value else None

    @property
    def account_kind(self) -> Literal["person", "staff"] | None:
        """``person`` or ``staff`` for tokens issued to an account (claim ``kind``), else None (API clients)."""
        value = self.claims.get("kind")
        return value if value in ("person", "staff") else None

    @property
    def is_admin(self) -> bool:
        return self.account_kind is None and self.department is None and ADMIN_SCOPE in self.scopes


def _b64json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("the token is not a well-formed JWT") from exc


class AccessTokens:
    """Issuing and verifying access tokens for one issuer (ecert's public URL) and audience."""

    def __init__(
        self,
        keys: TokenKeys,
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        lifetime: dt.timedelta = dt.timedelta(minutes=15),
        leeway: dt.timedelta = dt.timedelta(seconds=30),
        cache_size: int = 8192,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.lifetime = lifetime
        self.leeway = int(leeway.total_seconds())
        self.cache_size = cache_size
        # token -> its verified claims. A client sends the same token for its whole lifetime, so
        # its signature is checked once; lifetime and audience are checked again on every use.
        self._verified: dict[str, VerifiedToken] = {}

    def issue(
        self,
        *,
        subject: str,
        scopes: Iterable[str],
        client_id: str,
        department: str | None,
        acr: str,
        audience: str | None = None,
        now: dt.datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AccessToken:
        issued_at = int((now or self.clock.now()).timestamp())
        lifetime = int(self.lifetime.total_seconds())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": audience or self.audience, "iat": issued_at,
            "nbf": issued_at, "exp": issued_at + lifetime, "jti": uuid.uuid4().hex, "client_id": client_id,
            "scope": format_scopes(scopes), "acr": acr,
        }
        if department is not None:
            claims["dept"] = department
        claims.update({k: v for k, v in (extra or {}).items() if k not in claims})
        return AccessToken(token=self.sign(claims, ACCESS_TOKEN_TYPE), claims=claims, expires_in=lifetime)

    def sign(self, claims: Mapping[str, Any], typ: str) -> str:
        """A compact JWS of ``claims`` with the current key (``kid`` and ``typ`` in the header)."""
        signer = self.keys.signer()
        headers = {"kid": kid_for(signer.key_ref), "typ": typ}
        return str(jws.sign(dict(claims), signer, headers=headers, algorithm=ALGORITHM))

    def verify_typed(self, token: str, typ: str) -> dict[str, Any]:
        """Signature and ``typ`` only (the caller checks the claims): for ID tokens, counter QRs..."""
        return dict(self._verify_signature(token, typ).claims)

    def verify(self, token: str, *, audience: str | None = None, now: dt.datetime | None = None) -> VerifiedToken:
        """The token's claims, or :class:`InvalidToken` saying (briefly) what is wrong."""
        at = int((now or self.clock.now()).timestamp())
        known = self._verified.get(token)
        if known is not None:
            self._check_claims(known.claims, audience or self.audience, at)
            return known
        verified = self._verify_signature(token)
        self._check_claims(verified.claims, audience or self.audience, at)
        self._remember(token, verified)
        return verified

    def _remember(self, token: str, verified: VerifiedToken) -> None:
        if self.cache_size <= 0:
            return
        while len(self._verified) >= self.cache_size:  # forget the oldest (dicts keep insertion order)
            try:
                del self._verified[next(iter(self._verified))]
            except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                break
        self._verified[token] = verified

    def _verify_signature(self, token: str, typ: str = ACCESS_TOKEN_TYPE) -> VerifiedToken:
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("the token is not a well-formed JWT")
        header = _b64json(token.split(".", 1)[0])
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM or header.get("typ") != typ:
            raise InvalidToken("the token is not an ecert access token")
        kid = header.get("kid")
        key = self.keys.verifier(kid) if isinstance(kid, str) else None
        if key is None or not isinstance(kid, str):
            raise InvalidToken("the token names no key of ours")
        try:
            payload = jws.verify(token, key, algorithms=[ALGORITHM])
        except JOSEError as exc:
            raise InvalidToken("the token's signature does not verify") from exc
        claims = json.loads(payload)
        if not isinstance(claims, dict):
            raise InvalidToken("the token has no claims")
        return VerifiedToken(claims=claims, kid=kid)

    def _check_claims(self, claims: Any, audience: str, now: int) -> None:
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            raise InvalidToken("the token has no subject")
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token is from another issuer")
        aud = claims.get("aud")
        if audience != aud and not (isinstance(aud, list) and audience in aud):
            raise InvalidToken("the token is meant for another audience")
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, int) or exp + self.leeway <= now:
            raise InvalidToken("the token has expired")
        if isinstance(nbf, int) and nbf - self.leeway > now:
            raise InvalidToken("the token is not valid yet")

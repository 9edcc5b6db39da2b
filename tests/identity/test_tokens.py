"""Access tokens signed in Vault: checked by a second JOSE library, across rotations, and refused when bad."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws
from jose.backends import ECKey
from jwcrypto import jwk, jwt

from ecert.clock import FixedClock
from identity.tokens import AccessTokens, InvalidToken, TokenKeys, kid_for
from keys import KeyRef, TransitKeyStore

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
ISSUER = "https://ecert.example"
AUDIENCE = "https://ecert.example/api"


@pytest.fixture
def token_keys(keystore: TransitKeyStore, uid: str) -> TokenKeys:
    return TokenKeys(keystore, f"tok-{uid}")


@pytest.fixture
def tokens(token_keys: TokenKeys) -> AccessTokens:
    return AccessTokens(token_keys, issuer=ISSUER, audience=AUDIENCE, clock=FixedClock(NOW))


def _issue(tokens: AccessTokens, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "subject": "cl_0123456789abcdef0123", "scopes": ["licences:read"], "client_id": "cl_0123456789abcdef0123",
        "department": "GZAIC", "acr": "client-secret",
    }
    values.update(overrides)
    return tokens.issue(**values).token


def _jwcrypto_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    keyset = jwk.JWKSet.from_json(json.dumps(jwks))
    checked = jwt.JWT(jwt=token, key=keyset, algs=["ES256"], check_claims=False)
    return json.loads(checked.claims)  # type: ignore[no-any-return]


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _segments(token: str) -> list[Any]:
    head, body, _ = token.split(".")
    return [json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in (head, body)]


def test_jwcrypto_verifies_our_tokens_against_the_jwks(tokens: AccessTokens, token_keys: TokenKeys) -> None:
    token = _issue(tokens)
    header, _ = _segments(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": f"{token_keys.name}-v1"}
    claims = _jwcrypto_claims(token, token_keys.jwks())
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE and claims["dept"] == "GZAIC"
    assert claims["exp"] - claims["iat"] == 900 and claims["iat"] == int(NOW.timestamp())
    assert claims["scope"] == "licences:read" and claims["acr"] == "client-secret" and len(claims["jti"]) == 32
    assert tokens.verify(token).claims == claims


def test_jwks_publishes_public_keys_only(token_keys: TokenKeys) -> None:
    (key,) = token_keys.jwks()["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "alg", "kid", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")


def test_after_rotation_old_tokens_verify_and_new_ones_carry_the_new_kid(tokens: AccessTokens, token_keys: TokenKeys) -> None:
    old = _issue(tokens)
    token_keys.rotate()
    new = _issue(tokens)
    assert _segments(new)[0]["kid"] == f"{token_keys.name}-v2"
    jwks = token_keys.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [f"{token_keys.name}-v2", f"{token_keys.name}-v1"]
    for token in (old, new):
        assert tokens.verify(token).subject == "cl_0123456789abcdef0123"
        assert _jwcrypto_claims(token, jwks)["iss"] == ISSUER


def test_a_rotation_by_another_process_is_picked_up(keystore: TransitKeyStore, uid: str) -> None:
    here = TokenKeys(keystore, f"tok-{uid}", refresh_interval=3600, probe_interval=0)
    there = TokenKeys(keystore, f"tok-{uid}")
    mine = AccessTokens(here, issuer=ISSUER, audience=AUDIENCE, clock=FixedClock(NOW))
    theirs = AccessTokens(there, issuer=ISSUER, audience=AUDIENCE, clock=FixedClock(NOW))
    assert _segments(_issue(mine))[0]["kid"].endswith("-v1")
    there.rotate()
    token = _issue(theirs)
    assert mine.verify(token).kid.endswith("-v2")  # an unknown newer kid makes ``here`` look again
    assert _segments(_issue(mine))[0]["kid"].endswith("-v2")


def test_signing_notices_a_rotation_after_the_refresh_interval(keystore: TransitKeyStore, uid: str) -> None:
    here = TokenKeys(keystore, f"tok-{uid}", refresh_interval=0, probe_interval=3600)
    mine = AccessTokens(here, issuer=ISSUER, audience=AUDIENCE, clock=FixedClock(NOW))
    _issue(mine)
    TokenKeys(keystore, f"tok-{uid}").rotate()
    assert _segments(_issue(mine))[0]["kid"].endswith("-v2")


class CountingStore:
    """The real key store, counting the public-key look-ups a verifier makes."""

    def __init__(self, store: TransitKeyStore) -> None:
        self.store, self.lookups = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def public_key(self, key: KeyRef) -> Any:
        self.lookups += 1
        return self.store.public_key(key)


def test_made_up_kids_cannot_flood_vault(keystore: TransitKeyStore, uid: str) -> None:
    store = CountingStore(keystore)
    keys = TokenKeys(store, f"tok-{uid}", probe_interval=3600)  # type: ignore[arg-type]
    tokens = AccessTokens(keys, issuer=ISSUER, audience=AUDIENCE, clock=FixedClock(NOW))
    real = _issue(tokens)
    head, body, sig = real.split(".")
    for version in range(2, 50):
        fake_head = _b64({"alg": "ES256", "typ": "at+jwt", "kid": f"tok-{uid}-v{version}"})
        with pytest.raises(InvalidToken, match="names no key"):
            tokens.verify(f"{fake_head}.{body}.{sig}")
    assert store.lookups == 0  # loaded at first use, then no Vault call within probe_interval


def _forge(claims: dict[str, Any], kid: str, **header: Any) -> str:
    forger = ec.generate_private_key(ec.SECP256R1())  # a throwaway local key: the attacker's
    return jws.sign(claims, ECKey(forger, "ES256"), headers={"kid": kid, "typ": "at+jwt", **header}, algorithm="ES256")


def test_bad_tokens_are_refused(tokens: AccessTokens, token_keys: TokenKeys) -> None:
    token = _issue(tokens)
    header, claims = _segments(token)
    head, body, sig = token.split(".")
    tampered = _b64({**claims, "dept": "OTHER"})
    cases = {
        "tampered claims": (f"{head}.{tampered}.{sig}", "signature"),
        "forged signature": (_forge(claims, header["kid"]), "signature"),
        "signature of another token": (f"{head}.{body}.{_issue(tokens).split('.')[2]}", "signature"),
        "alg none": (f"{_b64({**header, 'alg': 'none'})}.{body}.", "not an ecert"),
        "no signature": (f"{head}.{body}.", "signature"),
        "HS256 with the public key": (jws.sign(claims, json.dumps(token_keys.jwks()["keys"][0]), algorithm="HS256",
                                               headers={"kid": header["kid"], "typ": "at+jwt"}), "not an ecert"),
        "plain JWT type": (_forge(claims, header["kid"], typ="JWT"), "not an ecert"),
        "garbage": ("a.b.c", "well-formed"),
        "empty": ("", "well-formed"),
        "huge": ("a." + "b" * 10000 + ".c", "well-formed"),
    }
    for name, (bad, reason) in cases.items():
        with pytest.raises(InvalidToken, match=reason):
            tokens.verify(bad)
            pytest.fail(name)


def test_expired_and_future_tokens_are_refused(tokens: AccessTokens) -> None:
    token = _issue(tokens)
    assert tokens.verify(token, now=NOW + dt.timedelta(minutes=15, seconds=29))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token, now=NOW + dt.timedelta(minutes=15, seconds=30))
    with pytest.raises(InvalidToken, match="not valid yet"):
        tokens.verify(token, now=NOW - dt.timedelta(minutes=1))


def test_tokens_for_another_audience_or_issuer_are_refused(tokens: AccessTokens, token_keys: TokenKeys) -> None:
    elsewhere = _issue(tokens, audience="https://other.example")
    with pytest.raises(InvalidToken, match="audience"):
        tokens.verify(elsewhere)
    assert tokens.verify(elsewhere, audience="https://other.example")
    with pytest.raises(InvalidToken, match="audience"):
        tokens.verify(elsewhere)  # remembered as verified, but the audience is checked on every use
    stranger = AccessTokens(token_keys, issuer="https://evil.example", audience=AUDIENCE, clock=FixedClock(NOW))
    with pytest.raises(InvalidToken, match="issuer"):
        tokens.verify(_issue(stranger))


def test_kid_names_key_and_version() -> None:
    assert kid_for(KeyRef("token-signing", 3)) == "token-signing-v3"

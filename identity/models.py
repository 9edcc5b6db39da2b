"""Tables of the identity package: department API clients, accounts of people and enterprises, sessions."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = ["ApiClient", "Account", "EnterpriseAgent", "RecoveryCode", "LoginThrottle", "LoginSession", "LoginRecord",
           "RelyingParty", "AuthorizationCode", "RefreshToken", "RevokedToken", "StaffMember", "CounterVisit", "Consent"]

_TS = sa.DateTime(timezone=True)


class ApiClient(SQLModel, table=True):
    """A department system (or a platform administrator when ``department_code`` is None).

    ``client_id`` is public; the secret is never stored, only its keyed SHA-256 (see
    :func:`identity.clients.secret_hash`). ``scopes`` is space-separated, as in OAuth.
    """

    __tablename__ = "identity_api_client"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    department_code: str | None = Field(default=None, max_length=32, index=True)
    scopes: str = Field(max_length=1000)
    secret_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_type=_TS)
    created_by: str = Field(max_length=128)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class Account(SQLModel, table=True):
    """A person or an enterprise that logs in. ID number and phone are kept only as Vault transit
    ciphertexts plus keyed blind indexes (``certificates.holders.PiiVault``), never in clear.

    ``assurance`` is the account's proofing level: ``self`` (registered online) or ``in-person``
    (an ID document checked at a counter, ``proofed_by`` names the staff member).
    """

    __tablename__ = "identity_account"
    __table_args__ = (sa.UniqueConstraint("kind", "id_index", name="uq_identity_account_id"),)

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=16)  # person | enterprise | staff
    name: str = Field(max_length=200)
    username: str | None = Field(default=None, max_length=64, unique=True)  # staff log in by username
    id_cipher: str = Field(max_length=512)
    id_index: str = Field(max_length=64, index=True)
    phone_cipher: str | None = Field(default=None, max_length=512)
    phone_index: str | None = Field(default=None, max_length=64, index=True)
    legal_representative: str | None = Field(default=None, max_length=200)
    password_hash: str = Field(max_length=256)
    totp_cipher: str | None = Field(default=None, max_length=512)
    totp_pending_cipher: str | None = Field(default=None, max_length=512)
    totp_last_step: int = 0
    assurance: str = Field(default="self", max_length=16)
    proofed_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    proofed_by: str | None = Field(default=None, max_length=128)
    created_at: dt.datetime = Field(sa_type=_TS)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class EnterpriseAgent(SQLModel, table=True):
    """A person authorised to act for an enterprise."""

    __tablename__ = "identity_enterprise_agent"

    enterprise_id: str = Field(primary_key=True, max_length=32, foreign_key="identity_account.id")
    person_id: str = Field(primary_key=True, max_length=32, foreign_key="identity_account.id", index=True)
    added_at: dt.datetime = Field(sa_type=_TS)
    added_by: str = Field(max_length=128)


class RecoveryCode(SQLModel, table=True):
    """One-time codes that stand in for TOTP; only their keyed hash is stored."""

    __tablename__ = "identity_recovery_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    created_at: dt.datetime = Field(sa_type=_TS)
    used_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per login name (its blind index), known or not, so lockout cannot reveal accounts."""

    __tablename__ = "identity_login_throttle"

    key: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_start: dt.datetime = Field(sa_type=_TS)
    locked_until: dt.datetime | None = Field(default=None, sa_type=_TS)


class LoginSession(SQLModel, table=True):
    """A browser session (cookie ``<id>.<secret>``, only the secret's hash stored).

    ``acr`` says how it was authenticated (``pwd``, ``pwd+totp``, ``in-person``); a session
    with ``mfa_pending`` only serves to finish the TOTP step.
    """

    __tablename__ = "identity_session"

    id: str = Field(primary_key=True, max_length=32)
    secret_hash: str = Field(max_length=64)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    acr: str = Field(max_length=32)
    mfa_pending: bool = False
    created_at: dt.datetime = Field(sa_type=_TS)
    last_seen_at: dt.datetime = Field(sa_type=_TS)
    expires_at: dt.datetime = Field(sa_type=_TS)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    user_agent: str = Field(default="", max_length=256)
    ip: str = Field(default="", max_length=64)


class LoginRecord(SQLModel, table=True):
    """Login history an account holder can read (successes and failures against their account)."""

    __tablename__ = "identity_login_record"

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    at: dt.datetime = Field(sa_type=_TS)
    outcome: str = Field(max_length=32)
    acr: str | None = Field(default=None, max_length=32)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=256)


class RelyingParty(SQLModel, table=True):
    """A platform application that logs people in through ecert (OpenID Connect).

    ``redirect_uris`` is newline-separated and matched exactly; a public client (no
    ``secret_hash``) relies on PKCE alone.
    """

    __tablename__ = "identity_relying_party"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    redirect_uris: str = Field(max_length=4000)
    scopes: str = Field(max_length=1000)
    secret_hash: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=200)  # shown on the consent screen
    created_at: dt.datetime = Field(sa_type=_TS)
    created_by: str = Field(max_length=128)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class AuthorizationCode(SQLModel, table=True):
    __tablename__ = "identity_authorization_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id")
    session_id: str = Field(max_length=32)
    redirect_uri: str = Field(max_length=1000)
    scope: str = Field(max_length=1000)
    nonce: str | None = Field(default=None, max_length=256)
    code_challenge: str = Field(max_length=128)
    acr: str = Field(max_length=32)
    auth_time: dt.datetime = Field(sa_type=_TS)
    expires_at: dt.datetime = Field(sa_type=_TS)
    used_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class RefreshToken(SQLModel, table=True):
    """One refresh token of a rotation family; using a rotated one again revokes the whole family."""

    __tablename__ = "identity_refresh_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    family_id: str = Field(max_length=32, index=True)
    client_id: str = Field(max_length=64, index=True)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    session_id: str = Field(max_length=32)
    scope: str = Field(max_length=1000)
    acr: str = Field(max_length=32)
    auth_time: dt.datetime = Field(sa_type=_TS)
    issued_at: dt.datetime = Field(sa_type=_TS)
    expires_at: dt.datetime = Field(sa_type=_TS)
    rotated_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class RevokedToken(SQLModel, table=True):
    """Access tokens revoked before expiry (RFC 7009); introspection consults it, until ``expires_at``."""

    __tablename__ = "identity_revoked_token"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: dt.datetime = Field(sa_type=_TS, index=True)
    revoked_at: dt.datetime = Field(sa_type=_TS)


class StaffMember(SQLModel, table=True):
    """A counter staff account (an :class:`Account` of kind ``staff``): its roles and service hall."""

    __tablename__ = "identity_staff"

    account_id: str = Field(primary_key=True, max_length=32, foreign_key="identity_account.id")
    roles: str = Field(max_length=200)  # space-separated: counter, supervisor
    hall: str = Field(max_length=32, index=True)
    added_at: dt.datetime = Field(sa_type=_TS)
    added_by: str = Field(max_length=128)


class CounterVisit(SQLModel, table=True):
    """One applicant served at a counter, bound to the staff member's hall session.

    ``qr_jti`` is unique: a counter QR starts at most one visit (replays are refused). A visit
    may read the applicant's e-licences only after ``consent_at`` and until it ends or expires.
    """

    __tablename__ = "identity_counter_visit"

    id: str = Field(primary_key=True, max_length=32)
    qr_jti: str | None = Field(default=None, max_length=64, unique=True)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    staff_account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    staff_session_id: str = Field(max_length=32, index=True)
    hall: str = Field(max_length=32)
    method: str = Field(max_length=16)  # qr | document
    acr: str = Field(max_length=32)
    started_at: dt.datetime = Field(sa_type=_TS)
    expires_at: dt.datetime = Field(sa_type=_TS)
    consent_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    consent_by: str | None = Field(default=None, max_length=16)  # applicant (in the QR) | recorded (by staff)
    ended_at: dt.datetime | None = Field(default=None, sa_type=_TS)


class Consent(SQLModel, table=True):
    """A standing consent: the holder lets a platform app use scopes beyond sign-in (``licences:own``).

    At most one live row (``revoked_at`` None) per account and app; granting more widens it.
    Revoking it ends the app's refresh tokens for the account and refuses its reads at once.
    """

    __tablename__ = "identity_consent"

    id: str = Field(primary_key=True, max_length=32)
    account_id: str = Field(max_length=32, foreign_key="identity_account.id", index=True)
    client_id: str = Field(max_length=64, index=True)
    scopes: str = Field(max_length=1000)
    purpose: str = Field(max_length=32)
    purpose_text: str | None = Field(default=None, max_length=200)
    granted_at: dt.datetime = Field(sa_type=_TS)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=_TS)
    revoked_by: str | None = Field(default=None, max_length=128)

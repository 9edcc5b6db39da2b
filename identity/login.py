"""Logging in: password, second factor, throttling and lockout, sessions and login history.

No answer tells an unknown login name from a wrong password: both cost one Vault HMAC (the
login name's blind index) and one argon2id verification, and both say :class:`LoginFailed`.
Lockout is counted per login name's blind index whether or not an account has it, so being
locked out reveals nothing either. Every attempt is audited (``identity.login.*``) without the
login name or any secret; a failure against a real account also lands in its login history.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from audit.trail import record_event
from certificates.holders import PiiVault
from ecert.clock import as_utc
from ecert.errors import Unauthenticated
from identity import passwords
from identity.accounts import ACR_PASSWORD, ACR_TOTP, login_indexes
from identity.models import Account, LoginRecord, LoginSession, LoginThrottle, RecoveryCode
from identity.once import claim

__all__ = [
    "MAX_FAILURES",
    "LOCKOUT",
    "LoginFailed",
    "LoginLocked",
    "SessionInvalid",
    "LoginResult",
    "SessionRef",
    "login_password",
    "login_second_factor",
    "start_session",
    "resolve_session",
    "list_sessions",
    "revoke_session",
    "login_history",
]

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCKOUT = dt.timedelta(minutes=15)
SESSION_LIFETIME = dt.timedelta(hours=12)
PENDING_LIFETIME = dt.timedelta(minutes=5)


class LoginFailed(Unauthenticated):
    """Wrong login name or password (the two are never told apart)."""

    slug = "login-failed"
    title = "Wrong login name or password"


class LoginLocked(Unauthenticated):
    """Too many failed attempts for this login name; try again later."""

    slug = "login-locked"
    title = "Too many failed attempts"
    status = 429


class SessionInvalid(Unauthenticated):
    slug = "session-invalid"
    title = "Not logged in (or the session ended)"


@dataclass(frozen=True)
class SessionRef:
    """A session and its cookie value ``<id>.<secret>`` (the secret is shown only here)."""

    session: LoginSession
    cookie: str

    def __repr__(self) -> str:
        return f"SessionRef({self.session.id}, acr={self.session.acr})"


@dataclass(frozen=True)
class LoginResult:
    session: SessionRef
    needs_second_factor: bool


def _throttle(session: Session, key: str) -> LoginThrottle:
    """The failure count of a login name (not yet stored if it never failed: successes write nothing here)."""
    return session.get(LoginThrottle, key, with_for_update=True) or LoginThrottle(
        key=key, failures=0, window_start=dt.datetime.min.replace(tzinfo=dt.timezone.utc))


def _locked(row: LoginThrottle, now: dt.datetime) -> bool:
    return row.locked_until is not None and as_utc(row.locked_until) > now


def _fail(session: Session, row: LoginThrottle, account: Account | None, *, reason: str, ip: str, ua: str,
          now: dt.datetime) -> None:
    if row not in session:  # first failure of this name: insert, unless a concurrent failure just did
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            pass
    locked = _count_failure(session, row.key, now=now)
    target = f"account:{account.id}" if account is not None else None
    record_event(session, action="identity.login.failure", actor="anonymous", target=target,
                 details={"reason": reason, "locked": locked, "ip": ip}, at=now)
    if account is not None:
        session.add(LoginRecord(account_id=account.id, at=now, outcome="locked" if locked else "failure", ip=ip,
                                user_agent=ua[:256]))
    session.flush()


def _count_failure(session: Session, key: str, *, now: dt.datetime) -> bool:
    """Count one failure of ``key`` in one UPDATE ... RETURNING, so no concurrent failure is lost (a read-then-write
    loses counts on SQLite, where FOR UPDATE does nothing); True if this failure locks the name."""
    table: sa.Table = LoginThrottle.__table__  # type: ignore[attr-defined]
    in_window = table.c.window_start > sa.literal(now - FAILURE_WINDOW, table.c.window_start.type)
    restart = sa.literal(now, table.c.window_start.type)
    count = session.execute(sa.update(table).where(table.c.key == key).values(
        failures=sa.case((in_window, table.c.failures + 1), else_=1),
        window_start=sa.case((in_window, table.c.window_start), else_=restart),
    ).returning(table.c.failures)).scalar_one()
    locked = count >= MAX_FAILURES
    if locked:
        session.execute(sa.update(table).where(table.c.key == key).values(
            locked_until=now + LOCKOUT, failures=0, window_start=now))
    for obj in list(session.identity_map.values()):
        if isinstance(obj, LoginThrottle) and obj.key == key:
            session.expire(obj)
    return locked


def _find(session: Session, indexes: list[tuple[str, str]], *, staff: bool) -> Account | None:
    clauses = [getattr(Account, column) == index for column, index in indexes if column != "none"]
    if not clauses:
        return None
    kind_clause = Account.kind == "staff" if staff else Account.kind != "staff"
    rows = session.exec(select(Account).where(or_(*clauses), kind_clause, col(Account.disabled_at).is_(None))).all()
    return rows[0] if len(rows) == 1 else None  # an ambiguous name logs nobody in


def login_password(
    session: Session, pii: PiiVault | None, *, login_name: str, password: str, now: dt.datetime, ip: str = "",
    user_agent: str = "", staff: bool = False,
) -> LoginResult:
    """Check the password; a session (pending the second factor when TOTP is on), or LoginFailed/LoginLocked.

    People log in with their ID number, credit code or phone (``pii`` needed); staff
    (``staff=True``) with their username.
    """
    if staff:
        indexes = [("username", passwords.keyed_hash("username", login_name.strip().lower()))]
        account = session.exec(select(Account).where(Account.username == login_name.strip().lower(),
                                                     Account.kind == "staff", col(Account.disabled_at).is_(None))).first()
    else:
        assert pii is not None
        indexes = login_indexes(pii, login_name)
        account = _find(session, indexes, staff=False)
    throttle = _throttle(session, indexes[0][1])
    if _locked(throttle, now):
        record_event(session, action="identity.login.locked", actor="anonymous",
                     target=f"account:{account.id}" if account else None, details={"ip": ip}, at=now)
        session.flush()
        raise LoginLocked("too many failed attempts; try again later", retry_after=int(LOCKOUT.total_seconds()))
    ok = passwords.verify_password(account.password_hash if account else None, password)
    if account is None or not ok:
        _fail(session, throttle, account, reason="password", ip=ip, ua=user_agent, now=now)
        raise LoginFailed("wrong login name or password")
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
        session.add(account)
    pending = account.totp_cipher is not None
    ref = start_session(session, account, acr=ACR_PASSWORD, now=now, ip=ip, user_agent=user_agent, mfa_pending=pending)
    if not pending:
        _succeed(session, throttle, account, ref, ip=ip, ua=user_agent, now=now)
    return LoginResult(ref, needs_second_factor=pending)


def _succeed(session: Session, throttle: LoginThrottle | None, account: Account, ref: SessionRef, *, ip: str, ua: str,
             now: dt.datetime) -> None:
    if throttle is not None and throttle.failures:
        throttle.failures = 0
        session.add(throttle)
    session.add(LoginRecord(account_id=account.id, at=now, outcome="success", acr=ref.session.acr, ip=ip, user_agent=ua[:256]))
    record_event(session, action="identity.login.success", actor=f"account:{account.id}", target=f"account:{account.id}",
                 details={"acr": ref.session.acr, "session": ref.session.id, "ip": ip}, at=now)
    session.flush()


def login_second_factor(
    session: Session, pii: PiiVault, *, cookie: str, code: str, now: dt.datetime, ip: str = "", user_agent: str = ""
) -> SessionRef:
    """Finish a pending login with a TOTP code (or a recovery code): a ``pwd+totp`` session."""
    pending = resolve_session(session, cookie, now=now, allow_pending=True)
    if not pending.mfa_pending:
        raise SessionInvalid("this session needs no second factor")
    account = session.get(Account, pending.account_id)
    assert account is not None and account.totp_cipher is not None
    throttle = _throttle(session, "mfa:" + account.id)
    if _locked(throttle, now):
        raise LoginLocked("too many failed attempts; try again later", retry_after=int(LOCKOUT.total_seconds()))
    secret = pii.open_many([account.totp_cipher])[0]
    step = passwords.match_totp(secret, code, at=now, last_step=account.totp_last_step)
    used_recovery = step is None and _spend_recovery_code(session, account.id, code, now=now)
    if (step is None or not _spend_totp_step(session, account.id, step)) and not used_recovery:
        _fail(session, throttle, account, reason="second-factor", ip=ip, ua=user_agent, now=now)
        raise LoginFailed("the code is not right")
    if not claim(session, LoginSession, col(LoginSession.id) == pending.id, col(LoginSession.revoked_at).is_(None),
                 values={"revoked_at": now}):
        raise SessionInvalid("this login was finished by another request")
    ref = start_session(session, account, acr=ACR_TOTP, now=now, ip=ip, user_agent=user_agent)
    _succeed(session, throttle, account, ref, ip=ip, ua=user_agent, now=now)
    if used_recovery:
        record_event(session, action="identity.login.recovery-code", actor=f"account:{account.id}",
                     target=f"account:{account.id}", details={}, at=now)
    return ref


def _spend_totp_step(session: Session, account_id: str, step: int) -> bool:
    """Mark ``step`` used for the account unless it (or a later one) already is: one code per step, once."""
    return claim(session, Account, col(Account.id) == account_id, col(Account.totp_last_step) < step,
                 values={"totp_last_step": step})


def _spend_recovery_code(session: Session, account_id: str, code: str, *, now: dt.datetime) -> bool:
    """Use one of the account's recovery codes, if ``code`` is one still unused."""
    return claim(session, RecoveryCode, col(RecoveryCode.code_hash) == passwords.recovery_hash(account_id, code),
                 col(RecoveryCode.account_id) == account_id, col(RecoveryCode.used_at).is_(None), values={"used_at": now})


def start_session(
    session: Session, account: Account, *, acr: str, now: dt.datetime, ip: str = "", user_agent: str = "",
    mfa_pending: bool = False, lifetime: dt.timedelta | None = None,
) -> SessionRef:
    sid, secret = "ses_" + secrets.token_hex(10), secrets.token_urlsafe(32)
    row = LoginSession(
        id=sid, secret_hash=passwords.keyed_hash("session", sid, secret), account_id=account.id, acr=acr,
        mfa_pending=mfa_pending, created_at=now, last_seen_at=now, ip=ip[:64], user_agent=user_agent[:256],
        expires_at=now + (PENDING_LIFETIME if mfa_pending else (lifetime or SESSION_LIFETIME)),
    )
    session.add(row)
    session.flush()
    return SessionRef(row, f"{sid}.{secret}")


def resolve_session(
    session: Session, cookie: str, *, now: dt.datetime, allow_pending: bool = False, staff: bool | None = None
) -> LoginSession:
    """The live session a cookie names (constant-time secret check), else SessionInvalid.

    ``staff=True`` accepts only staff accounts' sessions, ``False`` only citizens' (portal and counter
    never accept each other's sessions); None accepts either.
    """
    sid, _, secret = (cookie or "").partition(".")
    row = session.get(LoginSession, sid) if sid.startswith("ses_") and len(sid) <= 32 else None
    expected = row.secret_hash if row is not None else passwords.keyed_hash("session", "none", "none")
    ok = secrets.compare_digest(passwords.keyed_hash("session", sid, secret), expected)
    if row is None or not ok or row.revoked_at is not None or as_utc(row.expires_at) <= now:
        raise SessionInvalid("log in again")
    if row.mfa_pending and not allow_pending:
        raise SessionInvalid("finish logging in with the second factor")
    if staff is not None:
        account = session.get(Account, row.account_id)
        if account is None or (account.kind == "staff") != staff or account.disabled_at is not None:
            raise SessionInvalid("log in again")
    if now - as_utc(row.last_seen_at) > dt.timedelta(minutes=1):
        row.last_seen_at = now
        session.add(row)
    return row


def list_sessions(session: Session, account_id: str, *, now: dt.datetime) -> list[LoginSession]:
    query = select(LoginSession).where(
        LoginSession.account_id == account_id, col(LoginSession.revoked_at).is_(None), LoginSession.expires_at > now,
        LoginSession.mfa_pending == False,  # noqa: E712
    ).order_by(col(LoginSession.created_at).desc())
    return list(session.exec(query))


def revoke_session(session: Session, account_id: str, session_id: str, *, actor: str, now: dt.datetime) -> None:
    row = session.get(LoginSession, session_id, with_for_update=True)
    if row is None or row.account_id != account_id:
        raise SessionInvalid(f"no session {session_id} of yours")
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        record_event(session, action="identity.session.revoke", actor=actor, target=f"account:{account_id}",
                     details={"session": session_id}, at=now)
        session.flush()


def login_history(session: Session, account_id: str, *, limit: int = 50) -> list[LoginRecord]:
    query = select(LoginRecord).where(LoginRecord.account_id == account_id).order_by(col(LoginRecord.id).desc()).limit(limit)
    return list(session.exec(query))

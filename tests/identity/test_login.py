"""Logging in: passwords, TOTP and recovery codes, lockout without enumeration, sessions, history."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from audit.models import AuditEvent
from certificates.holders import PiiVault
from ecert.db import session_scope
from identity import accounts, login, passwords
from tests.identity.conftest import PASSWORD, person_id, phone_number

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)


def _register(engine: Engine, pii: PiiVault) -> tuple[str, str, str]:
    id_number, phone = person_id(), phone_number()
    with session_scope(engine) as session:
        view = accounts.register_person(session, pii, name="王五", id_number=id_number, phone=phone, password=PASSWORD, now=NOW)
    return view.id, id_number, phone


def _attempt(engine: Engine, pii: PiiVault, name: str, password: str, at: dt.datetime = NOW) -> login.LoginResult | str:
    """The result, or the failure's slug (committing the failure's audit event, as the routes do)."""
    with session_scope(engine) as session:
        try:
            return login.login_password(session, pii, login_name=name, password=password, now=at, ip="192.0.2.1")
        except (login.LoginFailed, login.LoginLocked) as exc:
            session.commit()
            return exc.slug


def test_login_by_id_number_or_phone(engine: Engine, pii: PiiVault) -> None:
    account_id, id_number, phone = _register(engine, pii)
    for name in (id_number, id_number.lower(), phone, "+86 " + phone):
        result = _attempt(engine, pii, name, PASSWORD)
        assert isinstance(result, login.LoginResult) and not result.needs_second_factor
        assert result.session.session.acr == accounts.ACR_PASSWORD and result.session.session.account_id == account_id
    with session_scope(engine) as session:
        assert {r.outcome for r in login.login_history(session, account_id)} == {"success"}
        events = session.exec(select(AuditEvent).where(AuditEvent.target == f"account:{account_id}",
                                                       AuditEvent.action == "identity.login.success")).all()
        assert len(events) == 4 and all(id_number not in str(e.details) and phone not in str(e.details) for e in events)


def test_unknown_name_and_wrong_password_look_alike(engine: Engine, pii: PiiVault) -> None:
    _, id_number, _ = _register(engine, pii)
    assert _attempt(engine, pii, id_number, "wrong password!") == "login-failed"
    assert _attempt(engine, pii, person_id(), PASSWORD) == "login-failed"
    assert _attempt(engine, pii, "not an id at all", PASSWORD) == "login-failed"


def test_lockout_is_the_same_for_unknown_names(engine: Engine, pii: PiiVault) -> None:
    account_id, known, _ = _register(engine, pii)
    unknown = person_id()
    for name in (known, unknown):
        answers = [_attempt(engine, pii, name, "wrong password!") for _ in range(login.MAX_FAILURES)]
        assert answers == ["login-failed"] * login.MAX_FAILURES
        assert _attempt(engine, pii, name, PASSWORD) == "login-locked"  # even the right password
    later = NOW + login.LOCKOUT + dt.timedelta(seconds=1)
    assert isinstance(_attempt(engine, pii, known, PASSWORD, later), login.LoginResult)
    with session_scope(engine) as session:
        outcomes = [r.outcome for r in login.login_history(session, account_id)]
        assert outcomes[:2] == ["success", "locked"] and outcomes.count("failure") == login.MAX_FAILURES - 1


def test_unknown_names_take_as_long_as_wrong_passwords(engine: Engine, pii: PiiVault) -> None:
    _, known, _ = _register(engine, pii)

    def timed(name: str) -> float:
        start = time.perf_counter()
        _attempt(engine, pii, name, "wrong password!", NOW - dt.timedelta(days=1))
        return time.perf_counter() - start

    known_times = [timed(known) for _ in range(3)]
    unknown_times = [timed(person_id()) for _ in range(3)]
    ratio = statistics.median(unknown_times) / statistics.median(known_times)
    assert 0.6 < ratio < 1.6, (known_times, unknown_times)


def _enrol(engine: Engine, pii: PiiVault, account_id: str) -> tuple[str, list[str]]:
    with session_scope(engine) as session:
        enrolment = accounts.begin_totp(session, pii, account_id, issuer="ecert")
    with session_scope(engine) as session:
        codes = accounts.confirm_totp(session, pii, account_id, passwords.totp_code(enrolment.secret, NOW), now=NOW)
    return enrolment.secret, codes


def test_totp_second_factor_and_recovery_codes(engine: Engine, pii: PiiVault) -> None:
    account_id, id_number, _ = _register(engine, pii)
    secret, recovery = _enrol(engine, pii, account_id)
    later = NOW + dt.timedelta(minutes=2)
    first = _attempt(engine, pii, id_number, PASSWORD, later)
    assert isinstance(first, login.LoginResult) and first.needs_second_factor
    with session_scope(engine) as session, pytest.raises(login.SessionInvalid):
        login.resolve_session(session, first.session.cookie, now=later)  # not usable before the code
    with session_scope(engine) as session:
        ref = login.login_second_factor(session, pii, cookie=first.session.cookie, code=passwords.totp_code(secret, later), now=later)
        assert ref.session.acr == accounts.ACR_TOTP
        assert login.resolve_session(session, ref.cookie, now=later).id == ref.session.id
    # the same code again (replay) fails; a recovery code works once
    second = _attempt(engine, pii, id_number, PASSWORD, later)
    assert isinstance(second, login.LoginResult)
    with session_scope(engine) as session, pytest.raises(login.LoginFailed):
        login.login_second_factor(session, pii, cookie=second.session.cookie, code=passwords.totp_code(secret, later), now=later)
    with session_scope(engine) as session:
        assert login.login_second_factor(session, pii, cookie=second.session.cookie, code=recovery[0].upper(), now=later)
    third = _attempt(engine, pii, id_number, PASSWORD, later)
    assert isinstance(third, login.LoginResult)
    with session_scope(engine) as session, pytest.raises(login.LoginFailed):
        login.login_second_factor(session, pii, cookie=third.session.cookie, code=recovery[0], now=later)


def test_sessions_list_and_revoke(engine: Engine, pii: PiiVault) -> None:
    account_id, id_number, _ = _register(engine, pii)
    one, two = (_attempt(engine, pii, id_number, PASSWORD) for _ in range(2))
    assert isinstance(one, login.LoginResult) and isinstance(two, login.LoginResult)
    with session_scope(engine) as session:
        assert {s.id for s in login.list_sessions(session, account_id, now=NOW)} == {one.session.session.id, two.session.session.id}
        login.revoke_session(session, account_id, one.session.session.id, actor=f"account:{account_id}", now=NOW)
    with session_scope(engine) as session:
        with pytest.raises(login.SessionInvalid):
            login.resolve_session(session, one.session.cookie, now=NOW)
        with pytest.raises(login.SessionInvalid):  # a forged secret for a real session id
            login.resolve_session(session, two.session.session.id + ".forged", now=NOW)
        with pytest.raises(login.SessionInvalid):  # someone else's session
            login.revoke_session(session, "acc_other", two.session.session.id, actor="x", now=NOW)
        assert login.resolve_session(session, two.session.cookie, now=NOW).id == two.session.session.id
        with pytest.raises(login.SessionInvalid):
            login.resolve_session(session, two.session.cookie, now=NOW + login.SESSION_LIFETIME)


def test_concurrent_failures_on_a_new_name_all_count(engine: Engine, pii: PiiVault) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = person_id()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _attempt(engine, pii, name, "wrong password!"), range(4)))
    assert answers == ["login-failed"] * 4  # the racing first inserts of the throttle row do not fail a request
    # each failure is counted by one conditional UPDATE, so none is lost on either database
    assert _attempt(engine, pii, name, "wrong password!") == "login-failed"
    assert _attempt(engine, pii, name, "wrong password!") == "login-locked"


def _wrong_code(secret: str, at: dt.datetime) -> str:
    valid = {passwords.totp_code(secret, at + dt.timedelta(seconds=s)) for s in (-30, 0, 30)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in valid)


def test_parallel_wrong_second_factors_all_count(engine: Engine, pii: PiiVault) -> None:
    """Guessing TOTP codes in parallel gains nothing: every wrong code is counted, so the lockout comes on time."""
    import threading

    account_id, id_number, _ = _register(engine, pii)
    secret, _ = _enrol(engine, pii, account_id)
    later = NOW + dt.timedelta(minutes=2)
    pending = [_attempt(engine, pii, id_number, PASSWORD, later) for _ in range(login.MAX_FAILURES + 2)]
    assert all(isinstance(p, login.LoginResult) for p in pending)
    first = pending.pop(0)
    assert isinstance(first, login.LoginResult)
    with session_scope(engine) as session, pytest.raises(login.LoginFailed):  # the account's failure count exists now
        login.login_second_factor(session, pii, cookie=first.session.cookie, code=_wrong_code(secret, later), now=later)
    barrier, answers = threading.Barrier(login.MAX_FAILURES), []

    def guess(result: login.LoginResult) -> None:
        barrier.wait()
        with session_scope(engine) as session:
            try:
                login.login_second_factor(session, pii, cookie=result.session.cookie, code=_wrong_code(secret, later), now=later)
            except (login.LoginFailed, login.LoginLocked) as exc:
                session.commit()
                answers.append(exc.slug)

    threads = [threading.Thread(target=guess, args=(p,)) for p in pending[:-1]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(answers)) <= ["login-failed", "login-locked"] and len(answers) == login.MAX_FAILURES
    last = pending[-1]
    assert isinstance(last, login.LoginResult)
    with session_scope(engine) as session, pytest.raises(login.LoginLocked):  # even the right code waits out the lockout
        login.login_second_factor(session, pii, cookie=last.session.cookie, code=passwords.totp_code(secret, later), now=later)

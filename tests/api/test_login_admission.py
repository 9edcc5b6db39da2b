"""Admission control of password checks: with the per-worker login queue full, logins, registrations and staff logins
are refused at once (503 + Retry-After, a friendly page in zh/en or problem+json) and leave nothing behind.

The queue is filled deterministically: the test holds the only places of a tiny queue itself."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from audit.models import AuditEvent
from certificates.holders import PiiVault
from ecert.db import session_scope
from ecert.models import RateCount
from identity import counter, passwords
from identity.admission import LoginAdmission, LoginBusy, hashes_per_second
from identity.models import Account, LoginRecord, LoginSession, LoginThrottle
from tests.identity.conftest import PASSWORD, person_id, phone_number, pii  # noqa: F401


@pytest.fixture
def queue(client: TestClient, swap: Any) -> Iterator[LoginAdmission]:
    """A queue of two places (a full one says: retry in 1 s, as two checks take well under a second)."""
    admission = LoginAdmission(2)
    swap(client.app, login_admission=admission)
    client.cookies.clear()
    yield admission
    client.cookies.clear()


def _counts(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {table.__name__: session.exec(select(func.count()).select_from(table)).one()
                for table in (AuditEvent, LoginSession, LoginRecord, LoginThrottle, Account, RateCount)}


def _register(client: TestClient) -> str:
    id_number = person_id()
    response = client.post("/portal/register", data={"name": "排队", "id_number": id_number, "phone": phone_number(),
                                                     "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return id_number


def test_a_full_queue_sheds_logins_at_once_and_leaves_nothing_behind(client: TestClient, engine: Engine,
                                                                      queue: LoginAdmission) -> None:
    id_number = _register(client)
    login = {"login_name": id_number, "password": PASSWORD}
    before, shed_before = _counts(engine), queue.shed
    with ExitStack() as held:
        for _ in range(queue.capacity):
            held.enter_context(queue.admit())
        page = client.post("/portal/login?lang=zh", data=login, follow_redirects=False)
        assert page.status_code == 503 and page.headers["retry-after"] == "1"
        assert "请 1 秒后重试" in page.text and 'id="login_name"' in page.text  # the form again, to retry from
        english = client.post("/portal/login?lang=en", data=login, follow_redirects=False)
        assert "please try again in 1 s" in english.text and 'name="viewport"' in english.text
        problem = client.post("/portal/login", data=login, headers={"Accept": "application/problem+json"})
        assert problem.status_code == 503 and problem.headers["retry-after"] == "1"
        body = problem.json()
        assert body["type"] == "/problems/login-busy" and body["retry_after"] == 1
        assert problem.headers["content-type"].startswith("application/problem+json")
        wrong = client.post("/portal/login", data={**login, "password": "wrong password"}, follow_redirects=False)
        assert wrong.status_code == 503  # shed before the password is looked at: no failure counted
        registered = client.post("/portal/register", data={"name": "排队", "id_number": person_id(),
                                                           "phone": phone_number(), "password": PASSWORD})
        assert registered.status_code == 503 and 'id="busy"' in registered.text
        assert queue.in_progress == queue.capacity
    assert queue.shed - shed_before == 5 and queue.in_progress == 0
    assert _counts(engine) == before  # no session, login record, failure count, account, rate count or audit event

    done = client.post("/portal/login", data=login, follow_redirects=False)
    assert done.status_code == 303 and "ecert_session" in done.cookies  # a place is free again: served normally
    assert queue.in_progress == 0  # the place was given back


def test_staff_logins_are_shed_too(client: TestClient, engine: Engine, queue: LoginAdmission,
                                   pii: PiiVault) -> None:  # noqa: F811
    username = f"q-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        counter.add_staff(session, pii, username=username, name="职员", id_number=person_id(), password=PASSWORD,
                          roles=["counter"], hall="H", actor="test", now=dt.datetime.now(dt.timezone.utc))
    form = {"username": username, "password": PASSWORD}
    with ExitStack() as held:
        for _ in range(queue.capacity):
            held.enter_context(queue.admit())
        busy = client.post("/counter/login", data=form, follow_redirects=False)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and 'id="busy"' in busy.text
    assert client.post("/counter/login", data=form, follow_redirects=False).status_code == 303


def test_the_queue_is_sized_from_the_measured_login_rate_and_the_latency_target() -> None:
    assert hashes_per_second(2, hash_seconds=0.05, cpus=2) == pytest.approx(20.0)  # two workers share two CPUs
    passwords.verify_password(None, "any password")  # a check has been timed: the hash rate is measured now
    observed = passwords.observed_hash_seconds()
    assert observed is not None and hashes_per_second(2) == pytest.approx(passwords.HASH_SLOTS / observed)
    assert LoginAdmission(7).capacity == 7  # a fixed queue (ECERT_LOGIN_QUEUE)

    now = [0.0]
    queue = LoginAdmission(0, target_seconds=2.0, clock=lambda: now[0])
    assert queue.capacity == max(passwords.HASH_SLOTS, math.floor(hashes_per_second(1) * 2.0))  # before any login

    def logins(concurrent: int, seconds: float, rounds: int = 200) -> None:
        for _ in range(rounds):
            with ExitStack() as held:
                for _ in range(concurrent):
                    held.enter_context(queue.admit())
                now[0] += seconds

    logins(4, 1.0)  # 2.5 in progress on average (1, 2, 3, 4) for 1 s each: 2.5 logins/s, so about 5 fit in 2 s
    slow = queue.rate
    assert slow == pytest.approx(2.5, rel=0.1) and queue.capacity == max(passwords.HASH_SLOTS, math.floor(slow * 2))
    logins(4, 0.1)  # the same concurrency ten times faster: ten times the queue
    assert queue.rate == pytest.approx(10 * slow, rel=0.01) and queue.capacity == math.floor(queue.rate * 2)
    with ExitStack() as held:
        for _ in range(queue.capacity):
            held.enter_context(queue.admit())
        with pytest.raises(LoginBusy) as busy:
            held.enter_context(queue.admit())
    assert busy.value.retry_after == math.ceil(queue.capacity / queue.rate) == 2  # the queue drains in about 2 s

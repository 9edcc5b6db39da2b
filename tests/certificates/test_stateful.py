"""A property-based stateful test (hypothesis ``RuleBasedStateMachine``) of the legal record on both databases:
issuance and historical import with arbitrary times and offsets, status changes, time passing, the expiry sweep and
reconciliation. After every step each licence's times are the instants it was given, its status is what the
lifecycle table says, and its state, history, audit events and transparency leaf agree."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor, Issuer
from certificates.lifecycle import TRANSITIONS, Action, InvalidTransition, Status
from certificates.models import Licence
from certificates.reconcile import reconcile
from certificates.records import change_status, effective_status, expire_due
from certificates.types import add_type, parse_type_spec
from ecert.clock import FixedClock
from ecert.db import session_scope
from ecert.errors import InvalidInput
from keys import TransitKeyStore
from tests.certificates.conftest import BUSINESS_TYPE, TransitSealKeys, request_for

OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
DAY, YEAR = 24 * 3600, 366 * 24 * 3600
# durations that matter: moments, days, and years around the five-year validity
SPANS = st.one_of(st.integers(0, 3600), st.integers(DAY, 90 * DAY), st.integers(4 * YEAR, 6 * YEAR), st.integers(0, 8 * YEAR))
START = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
ACTIONS = [Action.SUSPEND, Action.REINSTATE, Action.REVOKE, Action.CANCEL, Action.MARK_OTHER]


def until(valid_from: dt.datetime) -> dt.datetime:
    """The end of the test type's validity: five calendar years (UTC), 29 February ending on the 28th."""
    start = valid_from.astimezone(dt.timezone.utc)
    try:
        return start.replace(year=start.year + 5)
    except ValueError:
        return start.replace(year=start.year + 5, day=28)


def test_the_record_stays_consistent(engine: Engine, keystore: TransitKeyStore, seal_keys: TransitSealKeys,
                                     department: str) -> None:
    examples = itertools.count()

    class Record(RuleBasedStateMachine):
        """One example: a department of its own and a clock of its own, so examples replay alike."""

        licences = Bundle("licences")

        def __init__(self) -> None:
            super().__init__()
            self.expected: dict[str, tuple[dt.datetime, str]] = {}  # id -> (valid_from, stored status)
            self.department = f"{department}E{next(examples)}"
            self.clock = FixedClock(START)
            self.issuer = Issuer(keystore=keystore, clock=self.clock, blobs=DatabaseBlobStore(), seal_keys=seal_keys,
                                 sealer=None, public_url="https://ecert.example")
            self.actor = Actor(f"client:{self.department.lower()}", self.department)
            with session_scope(engine) as session:
                add_type(session, department_code=self.department, spec=parse_type_spec(BUSINESS_TYPE), actor="test",
                         now=START)

        @rule(target=licences, back=SPANS, offset=OFFSETS, historical=st.booleans())
        def issue(self, back: int, offset: dt.timezone, historical: bool) -> str:
            valid_from = (self.clock.now() - dt.timedelta(seconds=back)).astimezone(offset)
            ended = until(valid_from) <= self.clock.now()
            try:
                with session_scope(engine) as session:
                    prepared = self.issuer.prepare(session, self.actor, self.department, request_for(valid_from=valid_from,
                                                                                      historical=historical))
                    licence = self.issuer.issue_one(session, self.actor, prepared)[0]
            except InvalidInput:
                assert (ended and not historical) or (historical and back == 0)
                return ""
            assert not (ended and not historical)
            self.expected[licence.id] = (valid_from, Status.VALID.value)
            return licence.id

        @rule(licence_id=licences, action=st.sampled_from(ACTIONS), offset=OFFSETS)
        def change(self, licence_id: str, action: Action, offset: dt.timezone) -> None:
            if not licence_id:
                return
            with Session(engine) as session:
                licence = session.get(Licence, licence_id)
                assert licence is not None
                current = effective_status(licence, self.clock.now())
            try:
                with session_scope(engine) as session:
                    changed = change_status(session, self.actor, licence_id, action, reason="checked",
                                            effective_at=self.clock.now().astimezone(offset), clock=self.clock)
                    status = changed.status
            except InvalidTransition:
                assert (current, action) not in TRANSITIONS
                status = current.value
                if current is Status.EXPIRED:  # the expiry was recorded first, then the change refused: rolled back
                    status = self.expected[licence_id][1]
            else:
                assert TRANSITIONS[(current, action)].value == status
            self.expected[licence_id] = (self.expected[licence_id][0], status)

        @rule(seconds=SPANS)
        def time_passes(self, seconds: int) -> None:
            self.clock.advance(dt.timedelta(seconds=seconds))

        @rule()
        def sweep(self) -> None:
            with session_scope(engine) as session:
                report = expire_due(session, now=self.clock.now(), department_code=self.department)
            assert report.failed == {}
            for licence_id, (valid_from, status) in self.expected.items():
                if status in ("valid", "suspended", "other") and until(valid_from) <= self.clock.now():
                    self.expected[licence_id] = (valid_from, Status.EXPIRED.value)

        @invariant()
        def agrees(self) -> None:
            with Session(engine) as session:
                for licence_id, (valid_from, status) in self.expected.items():
                    licence = session.get(Licence, licence_id)
                    assert licence is not None
                    assert licence.valid_from == valid_from and licence.valid_from.utcoffset() == dt.timedelta(0)
                    assert licence.status == status, (licence.number, licence.status, status)
                report = reconcile(session, department_code=self.department)
            assert report.ok, report.mismatches

    run_state_machine_as_test(Record, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)))

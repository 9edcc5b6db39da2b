"""The legal status state machine (pure) and its documentation."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from certificates.lifecycle import (
    MAX_FUTURE,
    TRANSITIONS,
    Action,
    InvalidEffectiveDate,
    InvalidTransition,
    Status,
    transition,
)
from ecert.errors import Conflict, InvalidInput

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
TERMINAL = {Status.REVOKED, Status.CANCELLED, Status.TRANSFERRED, Status.WITHDRAWN, Status.SUPERSEDED}


def go(status: Status, action: Action, *, effective: dt.datetime = NOW, last: dt.datetime | None = None, reason: str | None = "r"):
    return transition(status, action, reason=reason, effective_at=effective, issued_at=ISSUED, last_change_at=last, now=NOW)


@pytest.mark.parametrize(("source", "action"), sorted(TRANSITIONS, key=str))
def test_every_listed_transition_is_allowed(source: Status, action: Action) -> None:
    assert go(source, action).to_status is TRANSITIONS[(source, action)]


@pytest.mark.parametrize("source", sorted(TERMINAL, key=str))
@pytest.mark.parametrize("action", list(Action))
def test_terminal_states_allow_nothing(source: Status, action: Action) -> None:
    with pytest.raises(InvalidTransition) as info:
        go(source, action)
    assert isinstance(info.value, Conflict) and info.value.slug == "invalid-transition"
    assert "allowed: none" in info.value.detail


def test_reinstating_a_valid_licence_is_a_clear_error() -> None:
    with pytest.raises(InvalidTransition, match="cannot reinstate a licence that is valid"):
        go(Status.VALID, Action.REINSTATE)


def test_suspend_then_reinstate() -> None:
    assert go(Status.VALID, Action.SUSPEND).to_status is Status.SUSPENDED
    assert go(Status.SUSPENDED, Action.REINSTATE, reason=None).to_status is Status.VALID


def test_a_reason_is_required_for_adverse_changes() -> None:
    with pytest.raises(InvalidInput) as info:
        go(Status.VALID, Action.REVOKE, reason="  ")
    assert info.value.extensions["errors"][0]["pointer"] == "#/reason"


def test_back_dating_rules() -> None:
    assert go(Status.VALID, Action.REVOKE, effective=ISSUED).effective_at == ISSUED
    with pytest.raises(InvalidEffectiveDate, match="before the licence was issued"):
        go(Status.VALID, Action.REVOKE, effective=ISSUED - dt.timedelta(seconds=1))
    with pytest.raises(InvalidEffectiveDate, match="previous status change"):
        go(Status.SUSPENDED, Action.REVOKE, effective=NOW - dt.timedelta(days=2), last=NOW - dt.timedelta(days=1))
    assert go(Status.VALID, Action.REVOKE, effective=NOW + MAX_FUTURE).effective_at == NOW + MAX_FUTURE
    with pytest.raises(InvalidEffectiveDate, match="cannot be scheduled"):
        go(Status.VALID, Action.REVOKE, effective=NOW + MAX_FUTURE + dt.timedelta(seconds=1))
    with pytest.raises(InvalidEffectiveDate, match="time zone"):
        go(Status.VALID, Action.REVOKE, effective=NOW.replace(tzinfo=None))


def test_docs_table_matches_the_code() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()
    documented = set(re.findall(r"^\| `(\w[\w-]*)` \| `([\w-]+)` \| `(\w+)` \|", text, re.M))
    assert documented == {(s.value, a.value, t.value) for (s, a), t in TRANSITIONS.items()}

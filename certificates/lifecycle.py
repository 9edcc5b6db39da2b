"""The legal status of a licence: states, the allowed transitions, and back-dating rules.

Pure data and pure functions; :mod:`certificates.service` applies them to records. The table
is documented in ``docs/lifecycle.md`` (a test keeps the two in step).

Back-dating rules for a change's *effective date*:

* never before the licence was issued (``issued_at``);
* never before the effective date of the licence's previous status change (history is ordered);
* at most :data:`MAX_FUTURE` (5 minutes, clock skew between systems) in the future: changes
  cannot be scheduled, a department sends them when they take effect;
* ``expire`` is effective exactly at ``valid_until`` (and only once it has passed); expiry is a fact of the
  validity window, not a decision, so it may precede ``issued_at`` (a licence recorded after it ended);
* a *historical* licence (issued before ecert and imported) existed from ``valid_from``: its changes may be
  back-dated to then.

Issuance (:func:`check_window`): a licence whose validity already ended can only be recorded as a historical
import (``historical: true``), never issued as new; a historical record starts in the past.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from ecert.errors import Conflict, InvalidInput

__all__ = [
    "Status",
    "Action",
    "TRANSITIONS",
    "Transition",
    "InvalidTransition",
    "InvalidEffectiveDate",
    "transition",
    "check_effective_date",
    "check_window",
    "allowed_actions",
    "MAX_FUTURE",
    "STATUS_WORDS",
]

MAX_FUTURE = dt.timedelta(minutes=5)


class Status(str, enum.Enum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    CANCELLED = "cancelled"  # deregistered at the holder's request
    EXPIRED = "expired"
    TRANSFERRED = "transferred"  # transferred out to another jurisdiction
    WITHDRAWN = "withdrawn"  # withdrawn as an administrative penalty
    SUPERSEDED = "superseded"  # replaced by a renewal or amendment (a newer version)
    OTHER = "other"


class Action(str, enum.Enum):
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"
    CANCEL = "cancel"
    EXPIRE = "expire"
    TRANSFER = "transfer"
    WITHDRAW = "withdraw"
    SUPERSEDE = "supersede"
    MARK_OTHER = "mark-other"


S, A = Status, Action

# (from status, action) -> to status. Anything not listed is an invalid transition.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (S.VALID, A.SUSPEND): S.SUSPENDED,
    (S.VALID, A.REVOKE): S.REVOKED,
    (S.VALID, A.CANCEL): S.CANCELLED,
    (S.VALID, A.EXPIRE): S.EXPIRED,
    (S.VALID, A.TRANSFER): S.TRANSFERRED,
    (S.VALID, A.WITHDRAW): S.WITHDRAWN,
    (S.VALID, A.SUPERSEDE): S.SUPERSEDED,
    (S.VALID, A.MARK_OTHER): S.OTHER,
    (S.SUSPENDED, A.REINSTATE): S.VALID,
    (S.SUSPENDED, A.REVOKE): S.REVOKED,
    (S.SUSPENDED, A.CANCEL): S.CANCELLED,
    (S.SUSPENDED, A.EXPIRE): S.EXPIRED,
    (S.SUSPENDED, A.WITHDRAW): S.WITHDRAWN,
    (S.SUSPENDED, A.SUPERSEDE): S.SUPERSEDED,
    (S.EXPIRED, A.REVOKE): S.REVOKED,
    (S.EXPIRED, A.WITHDRAW): S.WITHDRAWN,
    (S.EXPIRED, A.SUPERSEDE): S.SUPERSEDED,
    (S.OTHER, A.REINSTATE): S.VALID,
    (S.OTHER, A.SUSPEND): S.SUSPENDED,
    (S.OTHER, A.REVOKE): S.REVOKED,
    (S.OTHER, A.EXPIRE): S.EXPIRED,
}

# Plain words for people (verification page, API), Chinese and English.
STATUS_WORDS: dict[Status, tuple[str, str]] = {
    S.VALID: ("有效", "Valid"),
    S.SUSPENDED: ("暂停使用", "Suspended"),
    S.REVOKED: ("已吊销", "Revoked"),
    S.CANCELLED: ("已注销（持证人申请）", "Cancelled at the holder's request"),
    S.EXPIRED: ("已过期", "Expired"),
    S.TRANSFERRED: ("已迁出", "Transferred to another jurisdiction"),
    S.WITHDRAWN: ("已撤销（行政处罚）", "Withdrawn as an administrative penalty"),
    S.SUPERSEDED: ("已被新版本替代", "Replaced by a newer version"),
    S.OTHER: ("其他", "Other (see reason)"),
}


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = "This status change is not allowed"


class InvalidEffectiveDate(InvalidInput):
    slug = "invalid-effective-date"
    title = "The effective date is not allowed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[{"pointer": "#/effective_at", "detail": detail}])


@dataclass(frozen=True)
class Transition:
    action: Action
    from_status: Status
    to_status: Status
    reason: str | None
    effective_at: dt.datetime


def allowed_actions(status: Status) -> list[Action]:
    return [action for (source, action) in TRANSITIONS if source is status]


def check_effective_date(
    effective_at: dt.datetime, *, issued_at: dt.datetime, last_change_at: dt.datetime | None, now: dt.datetime
) -> None:
    """Raise :class:`InvalidEffectiveDate` unless ``effective_at`` obeys the back-dating rules."""
    if effective_at.tzinfo is None:
        raise InvalidEffectiveDate("the effective date needs a time zone")
    if effective_at < issued_at:
        raise InvalidEffectiveDate(
            f"the effective date {effective_at.isoformat()} is before the licence was issued "
            f"({issued_at.isoformat()})"
        )
    if last_change_at is not None and effective_at < last_change_at:
        raise InvalidEffectiveDate(
            f"the effective date is before the previous status change ({last_change_at.isoformat()})"
        )
    if effective_at > now + MAX_FUTURE:
        raise InvalidEffectiveDate(
            "the effective date is in the future; status changes cannot be scheduled"
        )


def check_window(
    valid_from: dt.datetime, valid_until: dt.datetime | None, *, now: dt.datetime, historical: bool
) -> None:
    """Raise InvalidInput (pointer ``#/valid_from``) unless a new licence's window suits how it is recorded."""
    if historical and valid_from >= now:
        detail = "a historical record starts in the past: give the valid_from it was issued with"
        raise InvalidInput(detail, errors=[{"pointer": "#/valid_from", "detail": detail}])
    if not historical and valid_until is not None and valid_until <= now:
        detail = (f"the licence would already have expired ({valid_until.isoformat()}): record a licence issued "
                  "before ecert as a historical import (\"historical\": true)")
        raise InvalidInput(detail, errors=[{"pointer": "#/valid_from", "detail": detail}])


def transition(
    current: Status,
    action: Action,
    *,
    reason: str | None,
    effective_at: dt.datetime,
    issued_at: dt.datetime,
    last_change_at: dt.datetime | None,
    now: dt.datetime,
) -> Transition:
    """Decide one status change, or raise :class:`InvalidTransition` / :class:`InvalidEffectiveDate`."""
    target = TRANSITIONS.get((current, action))
    if target is None:
        allowed = ", ".join(a.value for a in allowed_actions(current)) or "none"
        raise InvalidTransition(
            f"cannot {action.value} a licence that is {current.value} (allowed: {allowed})",
            current_status=current.value,
            action=action.value,
        )
    needs_reason = action not in (Action.EXPIRE, Action.REINSTATE, Action.SUPERSEDE)
    if needs_reason and not (reason and reason.strip()):
        detail = f"a reason is required to {action.value} a licence"
        raise InvalidInput(detail, errors=[{"pointer": "#/reason", "detail": detail}])
    check_effective_date(effective_at, issued_at=issued_at, last_change_at=last_change_at, now=now)
    return Transition(action, current, target, reason.strip() if reason else None, effective_at)

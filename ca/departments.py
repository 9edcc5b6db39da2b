"""The department registry: each department has a stable short code and a name.

Whether a department may still act is asked on every write of its API clients, so it is cached per
process (:func:`cached_status`, :func:`load_status`) for ``STATUS_TTL_SECONDS``. Disabling a department
through :func:`disable_department` marks it disabled in this process's cache as the transaction commits;
another process (another worker, the ``ecert department disable`` command) sees it within the TTL.
A department is never enabled again, so a disabled entry is never replaced by an older "active" read.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit.trail import record_event
from ca.errors import DepartmentDisabled, DuplicateDepartment, UnknownDepartment
from ca.models import Department
from ecert.errors import InvalidInput

__all__ = ["add_department", "get_department", "active_department", "list_departments", "disable_department", "validate_code",
           "STATUS_TTL_SECONDS", "cached_status", "load_status"]

_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
STATUS_TTL_SECONDS = 10.0
# per database (id of its engine, dropped with the engine): department code -> (active, monotonic expiry)
_STATUS: dict[int, dict[str, tuple[bool, float]]] = {}
_STATUS_LOCK = threading.Lock()


def validate_code(code: str) -> str:
    """Department codes are 2-16 upper-case letters and digits, starting with a letter (e.g. ``SCJGJ``)."""
    if not _CODE.match(code):
        raise InvalidInput(f"invalid department code {code!r}: use 2-16 of A-Z and 0-9, starting with a letter")
    return code


def add_department(session: Session, code: str, name: str, *, name_en: str | None = None, actor: str, now: dt.datetime) -> Department:
    validate_code(code)
    name = name.strip()
    if not name or len(name.encode()) > 64:
        raise InvalidInput("a department name is 1-64 bytes of UTF-8 (21 Chinese characters): it goes into certificates")
    if session.get(Department, code) is not None:
        raise DuplicateDepartment(f"department {code} already exists")
    department = Department(code=code, name=name, name_en=name_en, created_at=now)
    session.add(department)
    session.flush()
    record_event(session, action="department.added", actor=actor, target=f"department:{code}", department=code,
                 details={"name": name}, at=now)
    return department


def get_department(session: Session, code: str) -> Department:
    department = session.get(Department, code)
    if department is None:
        raise UnknownDepartment(f"no department with code {code!r}")
    return department


def active_department(session: Session, code: str) -> Department:
    department = get_department(session, code)
    if department.disabled_at is not None:
        raise DepartmentDisabled(f"department {code} is disabled")
    return department


def list_departments(session: Session, *, include_disabled: bool = False) -> list[Department]:
    query = select(Department).order_by(Department.code)
    if not include_disabled:
        query = query.where(col(Department.disabled_at).is_(None))
    return list(session.exec(query))


def disable_department(session: Session, code: str, *, actor: str, now: dt.datetime) -> Department:
    """Disable the department: no seals, clients, tokens or writes for it any more (this process at commit)."""
    department = get_department(session, code)
    if department.disabled_at is None:
        department.disabled_at = now
        session.add(department)
        record_event(session, action="department.disabled", actor=actor, target=f"department:{code}", department=code, at=now)
        _remember_at_commit(session, code)
    return department


def _remember_at_commit(session: Session, code: str) -> None:
    """Mark ``code`` disabled in this process's cache when the session commits (never if it rolls back first)."""
    engine, pending = session.get_bind(), [True]
    if not isinstance(engine, Engine):
        return

    def committed(_: Session) -> None:
        if pending[0]:
            pending[0] = False
            _remember(engine, code, active=False)

    def rolled_back(_: Session) -> None:
        pending[0] = False

    sa.event.listen(session, "after_commit", committed)
    sa.event.listen(session, "after_rollback", rolled_back)


def cached_status(engine: Engine, code: str) -> bool | None:
    """Whether the department is active, from this process's cache; None when unknown or older than the TTL."""
    entry = _STATUS.get(id(engine), {}).get(code)
    if entry is None or (entry[0] and entry[1] <= time.monotonic()):
        return None
    return entry[0]


def load_status(engine: Engine, code: str) -> bool:
    """Whether the department is active (an unknown one is not), read from the database and cached."""
    with Session(engine) as session:
        row = session.get(Department, code)
    if row is None:
        return False  # unknown: refused, not remembered
    return _remember(engine, code, active=row.disabled_at is None)


def _remember(engine: Engine, code: str, *, active: bool) -> bool:
    with _STATUS_LOCK:
        known = _STATUS.get(id(engine))
        if known is None:
            known = _STATUS[id(engine)] = {}
            weakref.finalize(engine, _STATUS.pop, id(engine), None)
        if known.get(code, (True, 0.0))[0] is False:
            return False  # disabled stays disabled (there is no enable)
        known[code] = (active, time.monotonic() + STATUS_TTL_SECONDS)
    return active

"""The department registry: each department has a stable short code and a name."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import Session, col, select

from audit.trail import record_event
from ca.errors import DepartmentDisabled, DuplicateDepartment, UnknownDepartment
from ca.models import Department
from ecert.errors import InvalidInput

__all__ = ["add_department", "get_department", "active_department", "list_departments", "disable_department", "validate_code"]

_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")


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
    department = get_department(session, code)
    if department.disabled_at is None:
        department.disabled_at = now
        session.add(department)
        record_event(session, action="department.disabled", actor=actor, target=f"department:{code}", department=code, at=now)
    return department

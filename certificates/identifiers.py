"""Licence numbers and verification tokens.

A licence number follows the structure of GB/T 36904 (licence type, issuing authority, serial,
check character) in a readable, hyphenated form::

    BL-GZAIC-2026-000123-K
    type-department-year-serial-check

The check character is **ISO/IEC 7064 MOD 37-2** (pure system, modulus 37, radix 2) computed
over the characters of the number without hyphens (``BLGZAIC2026000123``). Its alphabet is
``0-9 A-Z *`` (``*`` stands for 36). Being a pure system with a prime modulus, MOD 37-2 detects
*every* single-character substitution and *every* transposition of two adjacent characters
(the hybrid MOD 37,36 misses some transpositions, so it was not chosen).

Serials come from one counter row per (type, department, year), bumped with
``UPDATE ... RETURNING`` inside the issuing transaction, so two processes never get the same
serial on PostgreSQL (row lock) or SQLite (database write lock); a rolled-back issuance
rolls its counter bump back too.

The verification token is separate and unguessable (``secrets.token_urlsafe(18)``, 144 bits),
so public links never reveal or enumerate licence numbers.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from ecert.db import claim_apart
from ecert.errors import InvalidInput

__all__ = [
    "ALPHABET",
    "LicenceNumber",
    "InvalidLicenceNumber",
    "check_character",
    "is_valid_check",
    "parse_number",
    "format_number",
    "allocate_serials",
    "new_token",
    "CODE_PATTERN",
]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_DATA_ALPHABET = ALPHABET[:36]
_MODULUS = 37
CODE_PATTERN = re.compile(r"^[A-Z0-9]{2,16}$")
_NUMBER = re.compile(r"^([A-Z0-9]{2,16})-([A-Z0-9]{2,16})-(\d{4})-(\d{6,12})-([0-9A-Z*])$")


class InvalidLicenceNumber(InvalidInput):
    slug = "invalid-licence-number"
    title = "Not a valid licence number"


def _p(data: str) -> int:
    p = 0
    for char in data:
        value = _DATA_ALPHABET.find(char)
        if value < 0:
            raise ValueError(f"character {char!r} is not allowed in a licence number")
        p = ((p + value) * 2) % _MODULUS
    return p


def check_character(data: str) -> str:
    """The ISO/IEC 7064 MOD 37-2 check character of ``data`` (upper-case 0-9 A-Z)."""
    return ALPHABET[(_MODULUS + 1 - _p(data)) % _MODULUS]


def is_valid_check(data_with_check: str) -> bool:
    """True when the last character is the MOD 37-2 check character of the others."""
    if len(data_with_check) < 2 or data_with_check[-1] not in ALPHABET:
        return False
    try:
        p = _p(data_with_check[:-1])
    except ValueError:
        return False
    return (p + ALPHABET.index(data_with_check[-1])) % _MODULUS == 1


@dataclass(frozen=True)
class LicenceNumber:
    type_code: str
    department_code: str
    year: int
    serial: int

    @property
    def data(self) -> str:
        return f"{self.type_code}{self.department_code}{self.year:04d}{self.serial:06d}"

    def __str__(self) -> str:
        return format_number(self)


def format_number(number: LicenceNumber) -> str:
    for code in (number.type_code, number.department_code):
        if not CODE_PATTERN.match(code):
            raise ValueError(f"code {code!r} must be 2-16 of A-Z and 0-9")
    if not (0 < number.serial < 10**12 and 1000 <= number.year <= 9999):
        raise ValueError("serial or year out of range")
    return (
        f"{number.type_code}-{number.department_code}-{number.year:04d}-{number.serial:06d}-"
        f"{check_character(number.data)}"
    )


def parse_number(text: str) -> LicenceNumber:
    """Parse and validate a licence number (case-insensitive, surrounding blanks ignored)."""
    match = _NUMBER.match(text.strip().upper())
    if not match:
        raise InvalidLicenceNumber(f"{text!r} does not have the form TYPE-DEPT-YYYY-SERIAL-C")
    type_code, department, year, serial, check = match.groups()
    if not is_valid_check(type_code + department + year + serial + check):
        raise InvalidLicenceNumber(f"{text!r} has a wrong check character (mistyped?)")
    return LicenceNumber(type_code, department, int(year), int(serial))


def allocate_serials(session: Session, *, type_code: str, department_code: str, year: int, count: int = 1) -> list[int]:
    """``count`` new consecutive serials of (type, department, year); never the same serial twice across processes.

    On PostgreSQL they are taken in a short transaction of their own, so the counter row is not held locked while
    the caller seals PDFs (every issuance of that type would queue behind it): numbers are unique and increasing,
    and a failed issuance leaves its numbers unused, like a voided paper form (the audit trail's gapless ``seq``,
    not the licence numbers, is what proves nothing was removed). SQLite has one writer anyway: there they are
    taken in the caller's transaction, and a rolled-back issuance gives its numbers back.
    """
    return claim_apart(session, lambda own: _take(own, type_code, department_code, year, count))


def _take(session: Session, type_code: str, department_code: str, year: int, count: int) -> list[int]:
    key = {"t": type_code, "d": department_code, "y": year, "n": count}
    session.execute(
        sa.text(
            "INSERT INTO licence_serial (type_code, department_code, year, last) "
            "VALUES (:t, :d, :y, 0) ON CONFLICT DO NOTHING"
        ),
        key,
    )
    row = session.execute(
        sa.text(
            "UPDATE licence_serial SET last = last + :n "
            "WHERE type_code = :t AND department_code = :d AND year = :y RETURNING last"
        ),
        key,
    ).one()
    last = int(row[0])
    return list(range(last - count + 1, last + 1))


def new_token() -> str:
    """An unguessable verification token (144 bits, URL-safe)."""
    return secrets.token_urlsafe(18)

"""Licence numbers: ISO/IEC 7064 MOD 37-2 check character, parsing, and serial allocation."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from certificates.identifiers import (
    ALPHABET,
    InvalidLicenceNumber,
    LicenceNumber,
    check_character,
    format_number,
    is_valid_check,
    new_token,
    allocate_serials,
    parse_number,
)
from ecert.db import session_scope

DATA = st.text(alphabet=ALPHABET[:36], min_size=1, max_size=40)
CODES = st.text(alphabet=ALPHABET[:36], min_size=2, max_size=16)


def test_known_vector_from_iso_7064() -> None:
    # ISO/IEC 7064 MOD 37-2 example: "G123498654321" has check character "H".
    assert check_character("G123498654321") == "H"
    assert is_valid_check("G123498654321H")


@given(DATA)
def test_every_single_character_substitution_is_detected(data: str) -> None:
    full = data + check_character(data)
    assert is_valid_check(full)
    for position in range(len(full)):
        for replacement in ALPHABET:
            if replacement != full[position] and (position == len(full) - 1 or replacement != "*"):
                assert not is_valid_check(full[:position] + replacement + full[position + 1 :])


@given(DATA)
def test_every_adjacent_transposition_is_detected(data: str) -> None:
    full = data + check_character(data)
    for i in range(len(full) - 1):
        if full[i] != full[i + 1]:
            assert not is_valid_check(full[:i] + full[i + 1] + full[i] + full[i + 2 :])


@given(CODES, CODES, st.integers(2000, 2999), st.integers(1, 10**12 - 1))
def test_format_and_parse_round_trip(type_code: str, department: str, year: int, serial: int) -> None:
    number = LicenceNumber(type_code, department, year, serial)
    text = format_number(number)
    assert parse_number(text) == number
    assert parse_number(f"  {text.lower()} ") == number


@pytest.mark.parametrize(
    "text", ["", "BL-GZ-2026-000001", "BL-GZ-26-000001-X", "B-GZ-2026-000001-X", "BL_GZ_2026_000001_X", "BL-GZ-2026-00001-X"]
)
def test_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidLicenceNumber):
        parse_number(text)


def test_mistyped_number_is_refused_with_a_reason() -> None:
    good = format_number(LicenceNumber("BL", "GZAIC", 2026, 123))
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(InvalidLicenceNumber, match="check character"):
        parse_number(bad)


def test_tokens_are_unguessable_and_url_safe() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 24 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_serials_never_repeat_across_concurrent_transactions(engine: Engine, uid: str) -> None:
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(10):
                with session_scope(engine) as session:
                    [serial] = allocate_serials(session, type_code="ST", department_code=f"D{uid.upper()}", year=2026)
                with lock:
                    got.append(serial)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(got) == list(range(1, 41))


def test_a_rolled_back_serial_is_reused_on_sqlite_only_and_counters_are_per_year(engine: Engine, uid: str) -> None:
    department = f"D{uid.upper()}"
    with pytest.raises(RuntimeError):
        with session_scope(engine) as session:
            assert allocate_serials(session, type_code="ST", department_code=department, year=2026) == [1]
            raise RuntimeError("issuance failed")
    # PostgreSQL takes serials outside the issuing transaction (no lock held while sealing): the number stays used
    after_failure = 1 if engine.dialect.name == "sqlite" else 2
    with session_scope(engine) as session:
        assert allocate_serials(session, type_code="ST", department_code=department, year=2026) == [after_failure]
        assert allocate_serials(session, type_code="ST", department_code=department, year=2027) == [1]
        assert allocate_serials(session, type_code="ST", department_code=department, year=2026, count=3) == [
            after_failure + 1, after_failure + 2, after_failure + 3]

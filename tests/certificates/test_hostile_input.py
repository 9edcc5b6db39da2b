"""Hostile input to the parsers and identifiers: property-based (hypothesis). Each either answers or refuses with its
documented error, never anything else; what it accepts round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certificates.holders import HolderKind, normalise_holder_id
from certificates.identifiers import (
    ALPHABET,
    InvalidLicenceNumber,
    LicenceNumber,
    check_character,
    format_number,
    is_valid_check,
    parse_number,
)
from certificates.qr import qr_string, split_qr
from certificates.statuslist import LIST_SIZE, permute
from ecert.errors import InvalidInput

CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=16)
NUMBERS = st.builds(LicenceNumber, CODES, CODES, st.integers(1000, 9999), st.integers(1, 10**12 - 1))
HOSTILE = st.one_of(st.text(max_size=80), st.text(alphabet="0123456789ABCXYZ-x -\n\t\u00a0\uff10", max_size=60),
                    st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


@given(NUMBERS)
def test_every_formatted_number_parses_back(number: LicenceNumber) -> None:
    text = format_number(number)
    assert parse_number(text) == number
    assert parse_number(f"  {text.lower()} ") == number


@given(NUMBERS, st.integers(0, 200), st.sampled_from(ALPHABET))
def test_any_single_substitution_is_caught(number: LicenceNumber, where: int, char: str) -> None:
    text = format_number(number)
    positions = [i for i, c in enumerate(text) if c != "-"]
    i = positions[where % len(positions)]
    if text[i] == char:
        return
    typo = text[:i] + char + text[i + 1:]
    with pytest.raises(InvalidLicenceNumber):
        parse_number(typo)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=40))
def test_check_character_completes_any_data(data: str) -> None:
    assert is_valid_check(data + check_character(data))


@settings(max_examples=300)
@given(HOSTILE)
def test_parse_number_refuses_garbage_with_its_own_error(text: str) -> None:
    try:
        number = parse_number(text)
    except InvalidLicenceNumber:
        return
    assert parse_number(format_number(number)) == number
    assert is_valid_check(format_number(number).replace("-", ""))


@settings(max_examples=300)
@given(st.sampled_from(list(HolderKind)), HOSTILE)
def test_holder_ids_are_valid_or_refused_with_a_pointer(kind: HolderKind, text: str) -> None:
    try:
        normalised = normalise_holder_id(kind, text)
    except InvalidInput as exc:
        assert exc.extensions["errors"][0]["pointer"] == "#/holder/id_number"
        assert len(text.strip()) < 6 or text.strip() not in str(exc)  # never echoes the ID number
        return
    assert len(normalised) == 18 and normalise_holder_id(kind, normalised) == normalised


@given(st.text(alphabet="ABCDEFGHJKLMNPQRTUWXY0123456789", min_size=17, max_size=17))
def test_uscc_with_its_check_character_is_accepted_and_any_other_refused(body: str) -> None:
    accepted = [c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if _ok(HolderKind.ENTERPRISE, body + c)]
    assert len(accepted) <= 1  # the check character is a function of the body


def _ok(kind: HolderKind, text: str) -> bool:
    try:
        normalise_holder_id(kind, text)
    except InvalidInput:
        return False
    return True


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=40),
       st.one_of(st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-.", min_size=1, max_size=200)))
def test_qr_string_splits_back(token: str, jws: str | None) -> None:
    link, fragment = split_qr(qr_string("https://ecert.example/", token, jws))
    assert link == f"https://ecert.example/v/{token}" and fragment == jws


@given(st.text(max_size=300))
def test_split_qr_never_fails(text: str) -> None:
    link, fragment = split_qr(text)
    assert fragment is None or "#" not in link


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=16, max_size=32), st.lists(st.integers(0, LIST_SIZE - 1), min_size=1, max_size=64, unique=True))
def test_status_list_permutation_stays_in_range_and_never_collides(key: bytes, ks: list[int]) -> None:
    image = [permute(key, k) for k in ks]
    assert len(set(image)) == len(ks) and all(0 <= i < LIST_SIZE for i in image)
    for bad in (-1, LIST_SIZE):
        with pytest.raises(ValueError):
            permute(key, bad)

"""The access log's pure parts: declared purposes and what a public view disclosed."""

from __future__ import annotations

import datetime as dt

import pytest

from certificates.access_log import Disclosed, InvalidPurpose, Purpose, disclosed_in_view, parse_purpose
from certificates.disclosure import public_view
from certificates.models import Licence, LicenceType


@pytest.mark.parametrize("value,expected", [
    ("eligibility", Purpose("eligibility")),
    ("  employment ", Purpose("employment")),
    ("tenancy\x00 check\n for flat 3", Purpose("other", "tenancy check for flat 3")),
    ("other", Purpose("other", "other")),
    ("核验租房资格", Purpose("other", "核验租房资格")),
    ("x" * 200, Purpose("other", "x" * 200)),
])
def test_purposes(value: str, expected: Purpose) -> None:
    assert parse_purpose(value) == expected


@pytest.mark.parametrize("value", [None, "", "  ", "ab", "\x01\x02\x03", "x" * 201])
def test_missing_or_unbounded_purposes_are_refused(value: str | None) -> None:
    with pytest.raises(InvalidPurpose) as caught:
        parse_purpose(value)
    assert caught.value.slug == "purpose-required" and caught.value.status == 422


def test_purpose_words() -> None:
    assert Purpose("employment").words("zh") == "入职或从业资格核验"
    assert Purpose("other", "tenancy").words("en") == "tenancy"


def _licence() -> Licence:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return Licence(id="lic_1", number="N-1", token="t" * 24, type_code="BL", type_version=1, department_code="D",
                   holder_kind="person", holder_name="张三丰", holder_id_cipher="vault:v1:x", holder_index="i",
                   fields={"company": "c", "capital": 1}, fields_digest="d", status="valid", valid_from=now, issued_at=now,
                   issued_by="t", updated_at=now)


@pytest.mark.parametrize("policy,reveal,expected", [
    ({}, None, Disclosed((), "masked", "hidden")),
    ({"holder_name": "full", "fields": ["company"]}, None, Disclosed(("company",), "full", "hidden")),
    ({"holder_name": "hidden", "holder_id": "masked"}, "110101199003070011", Disclosed((), "hidden", "masked")),
    ({"holder_id": "full", "fields": ["capital", "company"]}, "110101199003070011", Disclosed(("capital", "company"), "masked", "full")),
    ({"holder_id": "full"}, None, Disclosed((), "masked", "hidden")),  # the online verifier reveals no ID number
])
def test_disclosed_matches_the_public_view(policy: dict[str, object], reveal: str | None, expected: Disclosed) -> None:
    licence = _licence()
    kind = LicenceType(code="BL", department_code="D", name_zh="z", name_en="e", disclosure=policy, created_at=licence.issued_at,
                       created_by="t")
    view = public_view(licence, kind, now=licence.issued_at, reveal_id=(lambda _c: reveal) if reveal else None)  # type: ignore[misc,return-value]
    assert disclosed_in_view(licence, view["holder"], view["fields"]) == expected
    assert expected.as_dict()["holder_id"] == expected.holder_id

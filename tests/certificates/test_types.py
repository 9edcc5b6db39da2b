"""Licence type specifications, versions, validity rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from certificates.models import LicenceType
from certificates.types import parse_type_spec, validate_fields, validity_window
from ecert.errors import InvalidInput
from tests.support.licences import BUSINESS_TYPE

START = dt.datetime(2024, 2, 29, 9, tzinfo=dt.timezone.utc)


def make(**overrides: Any) -> LicenceType:
    spec = parse_type_spec({**BUSINESS_TYPE, **overrides})
    return LicenceType(code=spec.code, department_code="D", name_zh=spec.name_zh, name_en=spec.name_en,
                       fields_schema=spec.fields_schema, validity=spec.validity, layout=spec.layout,
                       disclosure=spec.disclosure, created_at=START, created_by="t")


def test_every_problem_of_a_bad_spec_is_listed() -> None:
    bad = {**BUSINESS_TYPE, "code": "x", "name_en": "", "fields_schema": {"type": "objekt"},
           "validity": {"kind": "years", "years": 0}, "disclosure": {"holder_id": "shown"}}
    with pytest.raises(InvalidInput) as info:
        parse_type_spec(bad)
    pointers = {e["pointer"] for e in info.value.extensions["errors"]}
    assert {"#/code", "#/name_en", "#/fields_schema", "#/validity/years", "#/disclosure/holder_id"} <= pointers


def test_layout_and_disclosure_must_name_schema_properties() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_type_spec({**BUSINESS_TYPE, "layout": {"fields": [{"name": "ghost", "label_zh": "x", "label_en": "x"}]},
                         "disclosure": {"fields": ["ghost"]}})
    assert {e["pointer"] for e in info.value.extensions["errors"]} == {"#/layout/fields/0/name", "#/disclosure/fields"}


def test_validity_rules() -> None:
    assert validity_window(make(), {}, START) == (START, dt.datetime(2029, 2, 28, 9, tzinfo=dt.timezone.utc))
    assert validity_window(make(validity={"kind": "days", "days": 90}), {}, START)[1] == START + dt.timedelta(days=90)
    assert validity_window(make(validity={"kind": "indefinite"}), {}, START)[1] is None
    until = make(validity={"kind": "until_field", "field": "address"})
    assert validity_window(until, {"address": "2025-01-31"}, START)[1] == dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(InvalidInput) as info:
        validity_window(until, {"address": "soon"}, START)
    assert info.value.extensions["errors"][0]["pointer"] == "#/fields/address"
    with pytest.raises(InvalidInput):
        validity_window(until, {"address": "2020-01-01"}, START)


def test_field_errors_point_into_nested_values() -> None:
    nested = make(fields_schema={"type": "object", "properties": {"company": {"type": "string"}, "capital": {"type": "integer"},
                                 "address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 3}}}}})
    with pytest.raises(InvalidInput) as info:
        validate_fields(nested, {"company": 1, "address": {"city": "Guangzhou"}})
    assert [e["pointer"] for e in info.value.extensions["errors"]] == ["#/fields/address/city", "#/fields/company"]
    with pytest.raises(InvalidInput) as info:
        validate_fields(nested, ["not", "an", "object"])
    assert info.value.extensions["errors"][0]["pointer"] == "#/fields"

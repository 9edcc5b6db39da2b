"""Text is kept in NFC without controls or invisible characters, numbers within what a register holds; anything else
is refused with a JSON pointer, in the library and over HTTP (holder, fields, reasons, type and department names)."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from certificates.text import MAX_INTEGER, clean_text, clean_values, text_problem
from ecert.errors import InvalidInput
from ecert.runtime import Runtime
from tests.certificates.conftest import BUSINESS_TYPE, uscc
from tests.certificates.test_issue_http import SCOPES, headers, issue, problem  # noqa: F401  (fixture)
from tests.identity.conftest import bearer, new_client, token_for

SPOOFS = ["\u202e", "\x00", "\x1b", "\u200b", "\u200d", "\ufeff", "\u2066", "\u00ad", "\u3164", "\ufe0f", "\u2028", "\x85"]


@given(st.text())
def test_any_text_is_either_kept_in_nfc_and_printable_or_refused_with_its_pointer(value: str) -> None:
    try:
        kept = clean_text(value, "#/holder/name")
    except InvalidInput as refused:
        assert refused.extensions["errors"][0]["pointer"] == "#/holder/name"
        return
    assert kept == unicodedata.normalize("NFC", value)
    assert all(unicodedata.category(c)[0] != "C" for c in kept)


@pytest.mark.parametrize("char", SPOOFS)
def test_controls_bidi_and_invisible_characters_are_refused(char: str) -> None:
    assert text_problem(f"示例{char}公司") is not None
    with pytest.raises(InvalidInput):
        clean_text(f"示例{char}公司", "#/holder/name")


def test_names_are_normalised_and_addresses_keep_line_breaks() -> None:
    assert clean_text("Cafe\u0301", "#/x") == "Café"
    fields = clean_values({"company": "Cafe\u0301", "address": "广州市\n天河区", "capital": 10}, "#/fields")
    assert fields == {"company": "Café", "address": "广州市\n天河区", "capital": 10}
    with pytest.raises(InvalidInput):
        clean_text("广州市\n天河区", "#/holder/name")


def test_every_bad_value_gets_its_own_pointer() -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_values({"company": "A\u202eB", "capital": 10**4000, "rate": float("nan"), "list": ["ok", "\x00"],
                      "a/b\u200b": 1}, "#/fields")
    assert [e["pointer"] for e in refused.value.extensions["errors"]] == [
        "#/fields/company", "#/fields/capital", "#/fields/rate", "#/fields/list/1", "#/fields/a~1b\u200b"]
    assert clean_values({"capital": MAX_INTEGER}, "#/fields") == {"capital": MAX_INTEGER}


@pytest.mark.parametrize("extra, pointer", [
    ({"holder": {"kind": "enterprise", "name": "示例\u202e司公限有", "id_number": uscc()}}, "#/holder/name"),
    ({"fields": {"company": "示例\x00有限公司", "capital": 1}}, "#/fields/company"),
    ({"fields": {"company": "示例\x1b[2J有限公司", "capital": 1}}, "#/fields/company"),
    ({"fields": {"company": "示例\u200b有限公司", "capital": 1}}, "#/fields/company"),
    ({"fields": {"company": "示例有限公司", "capital": int("9" * 4001)}}, "#/fields/capital"),
])
def test_spoofing_text_and_absurd_numbers_are_refused_over_http(
    client: TestClient, headers: dict[str, str], extra: dict[str, Any], pointer: str  # noqa: F811
) -> None:
    problem(issue(client, headers, **extra), 422, pointer)


def test_a_status_reason_is_checked_too(client: TestClient, headers: dict[str, str]) -> None:  # noqa: F811
    licence = issue(client, headers).json()
    refused = client.post(f"/api/v1/licences/{licence['id']}/revoke", json={"reason": "fraud\u202e"}, headers=headers)
    problem(refused, 422, "#/reason")


def test_type_and_department_names_are_checked(client: TestClient, runtime: Runtime, uid: str,
                                               headers: dict[str, str]) -> None:  # noqa: F811
    spec = {**BUSINESS_TYPE, "code": "BX", "name_zh": "营业\u202e执照"}
    problem(client.post("/api/v1/licence-types", json=spec, headers=headers), 422, "#/name_zh")
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"])))
    for name in ("民政\u202e厅", "民政\x00厅", "民政\u200d厅"):
        refused = client.post("/api/v1/departments", json={"code": f"N{uid.upper()}", "name": name}, headers=admin)
        problem(refused, 422, "#/name")
    kept = client.post("/api/v1/departments", json={"code": f"N{uid.upper()}", "name": "Cafe\u0301"}, headers=admin)
    assert kept.status_code == 201 and kept.json()["name"] == "Café"

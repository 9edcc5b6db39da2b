"""The public view shows only what the type's disclosure policy allows (masked by default)."""

from __future__ import annotations

import datetime as dt

from certificates.disclosure import mask_name, public_view
from certificates.models import Licence, LicenceType

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def licence() -> Licence:
    return Licence(
        id="a" * 32, number="BL-GZAIC-2026-000001-X", token="t" * 24, type_code="BL", type_version=1, department_code="GZAIC",
        holder_kind="person", holder_name="张三丰", holder_id_cipher="vault:v1:xyz", holder_index="0" * 64,
        fields={"company": "示例公司", "capital": 5, "address": "secret street"}, fields_digest="0" * 64, status="valid",
        valid_from=NOW, valid_until=NOW + dt.timedelta(days=1), issued_at=NOW, issued_by="t", updated_at=NOW,
    )


def kind(disclosure: dict[str, object]) -> LicenceType:
    return LicenceType(code="BL", department_code="GZAIC", name_zh="营业执照", name_en="Business licence",
                       disclosure=disclosure, created_at=NOW, created_by="t")


def test_masked_by_default() -> None:
    view = public_view(licence(), kind({}), now=NOW, reveal_id=lambda c: "110101199003077777")
    assert view["holder"] == {"kind": "person", "name": "张*丰"}
    assert view["fields"] == {}
    assert "secret" not in str(view) and "110101" not in str(view)


def test_policy_reveals_only_what_it_names() -> None:
    view = public_view(licence(), kind({"holder_name": "full", "holder_id": "masked", "fields": ["company"]}), now=NOW,
                       reveal_id=lambda c: "110101199003077777")
    assert view["holder"] == {"kind": "person", "name": "张三丰", "id_number": "11**************77"}
    assert view["fields"] == {"company": "示例公司"}
    assert view["status"] == "valid" and view["status_text"]["en"] == "Valid"


def test_expired_reads_as_expired_and_names_are_masked_sensibly() -> None:
    assert public_view(licence(), None, now=NOW + dt.timedelta(days=2))["status"] == "expired"
    assert [mask_name(n) for n in ("张三", "A", "Acme Ltd")] == ["张*", "*", "A******d"]

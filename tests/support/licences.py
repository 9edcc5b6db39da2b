"""Sample licences and identifiers: a business-licence type, well-formed ID numbers, a rendered licence document."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy.engine import Engine

from certificates.issuance import Actor, IssueRequest, Issuer
from certificates.models import Licence
from certificates.sealing import FieldRow, LicenceDocument
from ecert.db import session_scope

DEPARTMENT = "ZJSJ01"
DEPARTMENT_NAME = "浙江省市场监督管理局"

BUSINESS_TYPE: dict[str, Any] = {
    "code": "BL",
    "name_zh": "营业执照",
    "name_en": "Business licence",
    "fields_schema": {
        "type": "object",
        "properties": {
            "company": {"type": "string", "minLength": 1, "maxLength": 200},
            "capital": {"type": "integer", "minimum": 0},
            "address": {"type": "string"},
        },
        "required": ["company", "capital"],
        "additionalProperties": False,
    },
    "validity": {"kind": "years", "years": 5},
    "layout": {
        "fields": [
            {"name": "company", "label_zh": "名称", "label_en": "Name"},
            {"name": "capital", "label_zh": "注册资本", "label_en": "Registered capital"},
            {"name": "address", "label_zh": "住所", "label_en": "Address"},
        ]
    },
    "disclosure": {"holder_name": "full", "holder_id": "hidden", "fields": ["company"]},
}


def person_id(rng: random.Random | None = None) -> str:
    """A well-formed (random) resident ID number with its GB 11643 check character."""
    rng = rng or random.Random()
    body = f"{rng.randint(110000, 659999)}19{rng.randint(50, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def uscc(rng: random.Random | None = None) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    rng = rng or random.Random()
    body = "91" + "".join(rng.choice(alphabet) for _ in range(15))
    total = sum(alphabet.index(c) * w for c, w in zip(body, weights))
    return body + alphabet[(31 - total % 31) % 31]


def licence(n: int = 1, **changes: object) -> LicenceDocument:
    document = LicenceDocument(
        licence_id=f"00000000-0000-0000-0000-{n:012d}",
        number=f"BL-{DEPARTMENT}-{n:08d}-7",
        department_code=DEPARTMENT,
        type_code="BL",
        type_version=1,
        type_name_zh="营业执照",
        type_name_en="Business licence",
        holder_kind="enterprise",
        holder_name="杭州示例科技有限公司",
        rows=(
            FieldRow("统一社会信用代码", "Unified social credit code", "91330100MA2XXXXX1X"),
            FieldRow("法定代表人", "Legal representative", "张三"),
            FieldRow("经营范围", "Business scope", "技术开发、技术服务、技术咨询；软件开发；信息系统集成服务。"),
        ),
        valid_from=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        valid_until=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc),
        issued_at=dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.timezone.utc),
        qr=f"https://ecert.example.gov.cn/v/Tok{n:020d}#eyJhbGciOiJFUzI1NiJ9.eyJuIjoiQkwifQ.c2ln",
    )
    return LicenceDocument(**{**document.__dict__, **changes})  # type: ignore[arg-type]


def request_for(**overrides: Any) -> IssueRequest:
    values: dict[str, Any] = {
        "type_code": "BL",
        "holder_kind": "enterprise",
        "holder_name": "广州示例科技有限公司",
        "holder_id": uscc(),
        "fields": {"company": "广州示例科技有限公司", "capital": 1000000},
    }
    values.update(overrides)
    return IssueRequest(**values)


def issue_licence(engine: Engine, issuer: Issuer, actor: Actor, department: str, **overrides: object) -> Licence:
    """One licence issued through ``issuer`` in its own transaction (``overrides`` change the request)."""
    with session_scope(engine) as session:
        prepared = issuer.prepare(session, actor, department, request_for(**overrides))
        licence, _ = issuer.issue_one(session, actor, prepared)
        return licence

"""Fixtures of the licence library tests: a department, a licence type, an issuer over real Vault."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor, IssueRequest, Issuer
from certificates.models import LicenceType
from certificates.types import add_type, parse_type_spec
from ecert.clock import SystemClock
from ecert.db import session_scope
from keys import KeyRef, KeyType, TransitKeyStore

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


class TransitSealKeys:
    """The department's QR-signing key: a non-exportable P-256 transit key per department."""

    def __init__(self, keystore: TransitKeyStore) -> None:
        self.keystore = keystore

    def qr_key(self, department_code: str) -> KeyRef:
        return self.keystore.create(f"qrtest-{department_code.lower()}", KeyType.EC_P256).latest


@pytest.fixture(scope="session")
def seal_keys(keystore: TransitKeyStore) -> TransitSealKeys:
    return TransitSealKeys(keystore)


@pytest.fixture
def issuer(keystore: TransitKeyStore, seal_keys: TransitSealKeys) -> Issuer:
    return Issuer(
        keystore=keystore, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=seal_keys, sealer=None,
        public_url="https://ecert.example",
    )


@pytest.fixture
def department(uid: str) -> str:
    return f"D{uid.upper()}"


@pytest.fixture
def licence_type(engine: Engine, department: str) -> LicenceType:
    with session_scope(engine) as session:
        return add_type(
            session, department_code=department, spec=parse_type_spec(BUSINESS_TYPE), actor="test",
            now=dt.datetime.now(dt.timezone.utc),
        )


@pytest.fixture
def actor(department: str) -> Actor:
    return Actor(subject=f"client:{department.lower()}", department=department)


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

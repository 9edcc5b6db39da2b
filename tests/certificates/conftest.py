"""Fixtures of the licence library tests: a department, a licence type, an issuer over real Vault."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine

from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor, Issuer
from certificates.models import LicenceType
from certificates.types import add_type, parse_type_spec
from ecert.clock import SystemClock
from ecert.db import session_scope
from keys import KeyRef, KeyType, TransitKeyStore
from tests.support.licences import BUSINESS_TYPE, person_id, request_for, uscc  # noqa: F401 - still importable from here


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


"""Verification fixtures: the real CA, a department with a seal, licences sealed by PadesSealer.

One session-scoped set of licences (valid, revoked, suspended, expired, superseded) and their
sealed PDFs serves every test; PDFs are sealed once and reused for the hostile-input matrix.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from sqlmodel import Session

from audit.tlog import sign_tree_head
from ca.service import CertificateAuthority
from certificates import records
from certificates.blobs import DatabaseBlobStore
from certificates.issuance import Actor, Issuer
from certificates.lifecycle import Action
from certificates.models import Licence
from certificates.types import add_type, parse_type_spec
from ecert.clock import SystemClock
from ecert.db import session_scope
from ecert.runtime import Runtime
from signing.sealer import PadesSealer
from tests.ca.conftest import authority  # noqa: F401 - shared fixture

try:  # ``live_url`` is moving from tests/ca/conftest.py to tests/conftest.py
    from tests.ca.conftest import live_url  # type: ignore[attr-defined]  # noqa: F401
except ImportError:
    pass
from tests.certificates.conftest import BUSINESS_TYPE, request_for, uscc
from verify.link import LinkVerifier, VerificationCounter
from verify.online import PdfVerifier

PUBLIC_URL = "http://ecert.test"


@dataclass
class Issued:
    department: str
    licences: dict[str, Licence]
    pdfs: dict[str, bytes]
    actor: Actor

    def token(self, name: str) -> str:
        return self.licences[name].token


@pytest.fixture(scope="session")
def sealer(runtime: Runtime, authority: CertificateAuthority) -> PadesSealer:  # noqa: F811
    return PadesSealer(runtime.keystore, authority, authority, authority)


@pytest.fixture(scope="session")
def issued(runtime: Runtime, authority: CertificateAuthority, sealer: PadesSealer) -> Issued:  # noqa: F811
    """Licences of one department in every state the page shows, each with its sealed PDF."""
    code = f"V{uuid.uuid4().hex[:6].upper()}"
    with session_scope(runtime.engine) as session:
        authority.add_department(session, code, f"核验测试局 {code}", name_en=f"Verification test bureau {code}", actor="test")
        add_type(session, department_code=code, spec=parse_type_spec(BUSINESS_TYPE), actor="test",
                 now=dt.datetime.now(dt.timezone.utc))
    authority.refresh_crls()  # SQLite: sealing inside the issuing transaction must not write a CRL
    issuer = Issuer(keystore=runtime.keystore, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=authority,
                    sealer=sealer, public_url=PUBLIC_URL)
    actor = Actor(subject="client:verify-test", department=code)
    names = ["valid", "revoked", "suspended", "old", "forgery_victim"]
    licences: dict[str, Licence] = {}
    with session_scope(runtime.engine) as session:
        prepared = [issuer.prepare(session, actor, code, request_for(holder_id=uscc(), holder_name=f"广州示例{n}科技有限公司",
                                                                        fields={"company": f"广州示例{n}科技有限公司", "capital": 1000}))
                    for n in names]
        prepared.append(issuer.prepare(session, actor, code, request_for(
            holder_id=uscc(), valid_from=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=6 * 366), historical=True)))
        rows = issuer.issue_batch(session, actor, prepared)
        licences = dict(zip([*names, "expired"], rows))
    clock = SystemClock()
    with session_scope(runtime.engine) as session:
        records.change_status(session, actor, licences["revoked"].id, Action.REVOKE, reason="违法经营 illegal business", effective_at=None, clock=clock)
        records.change_status(session, actor, licences["suspended"].id, Action.SUSPEND, reason="整改期间", effective_at=None, clock=clock)
        new, _, _ = records.amend(session, issuer, actor, licences["old"].id, fields={"company": "新名称有限公司", "capital": 2000},
                                  holder_name=None, reason="名称变更", idempotency_key=None)
        licences["current"] = new
    sign_tree_head(runtime.engine, runtime.keystore, clock)
    with Session(runtime.engine, expire_on_commit=False) as session:
        fresh = {name: session.get(Licence, row.id) for name, row in licences.items()}
        blobs = DatabaseBlobStore()
        pdfs = {name: blobs.get(session, row.pdf_blob_key) for name, row in fresh.items() if row and row.pdf_blob_key}
    return Issued(code, {k: v for k, v in fresh.items() if v is not None}, pdfs, actor)


@pytest.fixture(scope="session")
def link_verifier(runtime: Runtime) -> LinkVerifier:
    return LinkVerifier(runtime.engine, runtime.clock, public_url=PUBLIC_URL,
                        counter=VerificationCounter(runtime.engine, runtime.clock, every_seconds=3600))


@pytest.fixture(scope="session")
def pdf_verifier(runtime: Runtime, authority: CertificateAuthority, link_verifier: LinkVerifier) -> PdfVerifier:  # noqa: F811
    return PdfVerifier(runtime.engine, runtime.clock, authority, link_verifier)


@pytest.fixture(scope="session")
def publisher(runtime: Runtime, authority: CertificateAuthority):  # type: ignore[no-untyped-def]  # noqa: F811
    from verify.publisher import BundlePublisher

    return BundlePublisher(runtime.engine, runtime.keystore, runtime.clock, authority)


def issue_for(runtime: Runtime, authority: CertificateAuthority, sealer: PadesSealer, code: str, n: int = 1) -> list[Licence]:  # noqa: F811
    """Issue ``n`` sealed licences for an existing department (its type BL must exist)."""
    issuer = Issuer(keystore=runtime.keystore, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=authority,
                    sealer=sealer, public_url=PUBLIC_URL)
    actor = Actor(subject="client:verify-test", department=code)
    authority.refresh_crls()
    with session_scope(runtime.engine) as session:
        prepared = [issuer.prepare(session, actor, code, request_for(holder_id=uscc())) for _ in range(n)]
        rows = issuer.issue_batch(session, actor, prepared)
    with Session(runtime.engine, expire_on_commit=False) as session:
        return [session.get(Licence, r.id) for r in rows]  # type: ignore[misc]


def new_department(runtime: Runtime, authority: CertificateAuthority) -> str:  # noqa: F811
    code = f"R{uuid.uuid4().hex[:6].upper()}"
    with session_scope(runtime.engine) as session:
        authority.add_department(session, code, f"轮换测试局 {code}", actor="test")
        add_type(session, department_code=code, spec=parse_type_spec(BUSINESS_TYPE), actor="test",
                 now=dt.datetime.now(dt.timezone.utc))
    return code


def pdf_of(runtime: Runtime, licence: Licence) -> bytes:
    with Session(runtime.engine) as session:
        return DatabaseBlobStore().get(session, licence.pdf_blob_key or "")

"""Issuing licences against the real Vault and both databases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from audit.models import AuditEvent
from certificates.blobs import DatabaseBlobStore
from certificates.identifiers import parse_number
from certificates.issuance import Actor, IdempotencyKeyReused, Issuer
from certificates.models import Licence, LicenceEvent, LicenceType
from certificates.qr import fields_digest, split_qr, verify_payload
from certificates.records import list_for_holder
from certificates.types import ForeignLicenceType, UnknownLicenceType, add_type, parse_type_spec
from ecert.clock import SystemClock
from ecert.db import session_scope
from ecert.errors import Forbidden, InvalidInput, ServiceUnavailable
from keys import TransitKeyStore, VaultConnection
from keys.openbao import ManagedOpenBao
from tests.certificates.conftest import BUSINESS_TYPE, TransitSealKeys, person_id, request_for
from tests.support.licences import issue_licence as issue


def test_issue_stores_the_record_encrypted_and_numbered(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType, keystore: TransitKeyStore
) -> None:
    holder = "91440101MA59XXXX0X"
    from tests.support.licences import uscc

    holder = uscc()
    licence = issue(engine, issuer, actor, department, holder_id=holder)
    number = parse_number(licence.number)
    assert (number.type_code, number.department_code) == ("BL", department)
    assert licence.status == "valid" and len(licence.token) == 24
    assert licence.valid_until is not None and licence.valid_until.year == licence.valid_from.year + 5
    assert holder not in licence.holder_id_cipher and licence.holder_id_cipher.startswith("vault:v")
    assert issuer.pii.reveal(licence.holder_id_cipher) == holder
    with Session(engine) as session:
        stored = session.get(Licence, licence.id)
        assert stored is not None and stored.number == licence.number
        events = session.exec(select(LicenceEvent).where(LicenceEvent.licence_id == licence.id)).all()
        assert [(e.action, e.to_status) for e in events] == [("issue", "valid")]
        audit = session.exec(select(AuditEvent).where(AuditEvent.target == f"licence:{licence.id}")).one()
        assert audit.action == "certificates.licence.issue" and holder not in str(audit.details)


def test_the_qr_payload_is_a_jws_signed_by_the_department_key(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType,
    keystore: TransitKeyStore, seal_keys: TransitSealKeys,
) -> None:
    licence = issue(engine, issuer, actor, department)
    assert licence.qr_payload is not None
    link, jws = split_qr(licence.qr_payload)
    assert link == f"https://ecert.example/v/{licence.token}" and jws
    key = seal_keys.qr_key(department)
    checked = verify_payload(jws, keystore.public_key(key))
    assert checked["header"] == {"alg": "ES256", "kid": str(key), "typ": "ecert-qr+jws"}
    claims = checked["claims"]
    assert claims["iss"] == department and claims["no"] == licence.number and claims["lt"] == "BL/1"
    from certificates.qr import b64url

    assert claims["fd"] == b64url(fields_digest(licence.holder_name, licence.fields))
    tampered = jws.split(".")
    tampered[1] = tampered[1][:-2] + ("AA" if tampered[1][-2:] != "AA" else "BB")
    with pytest.raises(ValueError):
        verify_payload(".".join(tampered), keystore.public_key(key))


def test_bad_fields_are_reported_with_a_pointer_each(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with pytest.raises(InvalidInput) as info:
        issue(engine, issuer, actor, department, fields={"capital": -5, "extra": 1})
    pointers = {e["pointer"] for e in info.value.extensions["errors"]}
    assert "#/fields/capital" in pointers and "#/fields" in pointers  # missing company, extra property
    with pytest.raises(InvalidInput) as info:
        issue(engine, issuer, actor, department, holder_kind="person", holder_id="123")
    assert info.value.extensions["errors"][0]["pointer"] == "#/holder/id_number"
    with Session(engine) as session:
        assert session.exec(select(Licence).where(Licence.department_code == department)).first() is None


def test_unknown_and_foreign_types_are_refused(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType, uid: str
) -> None:
    with pytest.raises(UnknownLicenceType):
        issue(engine, issuer, actor, department, type_code="NOPE")
    other = f"O{uid.upper()}"
    with session_scope(engine) as session:
        spec = parse_type_spec({**BUSINESS_TYPE, "code": f"X{uid.upper()[:6]}"})
        add_type(session, department_code=other, spec=spec, actor="test", now=SystemClock().now())
    with pytest.raises(ForeignLicenceType):
        issue(engine, issuer, actor, department, type_code=f"X{uid.upper()[:6]}")
    with pytest.raises(Forbidden):
        issue(engine, issuer, actor, other, type_code=f"X{uid.upper()[:6]}")


def test_idempotency_key_replays_and_refuses_a_different_body(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    holder = person_id()
    first = issue(engine, issuer, actor, department, holder_kind="person", holder_id=holder, idempotency_key="k-1")
    with session_scope(engine) as session:
        prepared = issuer.prepare(session, actor, department, request_for(holder_kind="person", holder_id=holder, idempotency_key="k-1"))
        again, replayed = issuer.issue_one(session, actor, prepared)
    assert replayed and again.id == first.id
    with pytest.raises(IdempotencyKeyReused):
        issue(engine, issuer, actor, department, holder_kind="person", holder_id=holder, idempotency_key="k-1",
              fields={"company": "other", "capital": 1})
    with Session(engine) as session:
        count = session.execute(sa.select(sa.func.count()).select_from(Licence).where(Licence.department_code == department)).scalar()
    assert count == 1


def test_the_key_is_bound_to_the_request_as_validated_not_as_written(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    holder, start = person_id(), dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    first = issue(engine, issuer, actor, department, holder_kind="person", holder_id=holder, idempotency_key="norm",
                  valid_from=start)
    same = request_for(  # the explicit default version, other key order, blanks, lower case, another time zone
        holder_kind="person", holder_id=f" {holder.lower()} ", holder_name=" 广州示例科技有限公司 ", type_version=1,
        fields={"capital": 1000000, "company": "广州示例科技有限公司"}, idempotency_key="norm",
        valid_from=start.astimezone(dt.timezone(dt.timedelta(hours=8))),
    )
    with session_scope(engine) as session:
        again, replayed = issuer.issue_one(session, actor, issuer.prepare(session, actor, department, same))
    assert replayed and again.id == first.id
    for other in ({"valid_from": start + dt.timedelta(seconds=1)}, {"fields": {"company": "广州示例科技有限公司", "capital": 1}}):
        with pytest.raises(IdempotencyKeyReused):
            issue(engine, issuer, actor, department, holder_kind="person", holder_id=holder, idempotency_key="norm",
                  **{"valid_from": start, **other})


def test_a_type_version_stays_with_its_licences(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    with session_scope(engine) as session:
        v2 = add_type(session, department_code=department, spec=parse_type_spec({**BUSINESS_TYPE, "name_en": "Business licence (2027)"}),
                      actor="test", now=SystemClock().now())
    assert v2.version == 2
    latest = issue(engine, issuer, actor, department)
    pinned = issue(engine, issuer, actor, department, type_version=1)
    assert (latest.type_version, pinned.type_version) == (2, 1)


def test_holders_find_their_own_licences_by_blind_index(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    mine, theirs = person_id(), person_id()
    a = issue(engine, issuer, actor, department, holder_kind="person", holder_id=mine)
    b = issue(engine, issuer, actor, department, holder_kind="person", holder_id=mine.lower())
    issue(engine, issuer, actor, department, holder_kind="person", holder_id=theirs)
    with Session(engine) as session:
        found = list_for_holder(session, issuer.pii, kind="person", id_number=mine)
    assert {licence.id for licence in found} == {a.id, b.id}


def test_a_vault_outage_leaves_no_licence_row(
    engine: Engine, private_openbao: tuple[ManagedOpenBao, object], department: str, actor: Actor, licence_type: LicenceType
) -> None:
    server, credentials = private_openbao
    store = TransitKeyStore(VaultConnection(server.addr, credentials, timeout=3))  # type: ignore[arg-type]
    outage_issuer = Issuer(keystore=store, clock=SystemClock(), blobs=DatabaseBlobStore(), seal_keys=TransitSealKeys(store),
                           sealer=None, public_url="https://ecert.example")
    issue(engine, outage_issuer, actor, department)  # keys exist, everything works
    with Session(engine) as session:
        before_audit = session.execute(sa.select(sa.func.max(AuditEvent.seq))).scalar()
    server.seal()
    with pytest.raises(ServiceUnavailable):
        issue(engine, outage_issuer, actor, department, idempotency_key="during-outage")
    with Session(engine) as session:
        rows = session.exec(select(Licence).where(Licence.department_code == department)).all()
        assert len(rows) == 1 and all(r.idempotency_key is None for r in rows)
        serial = session.execute(sa.text("SELECT last FROM licence_serial WHERE department_code = :d"), {"d": department}).scalar()
        assert serial == 1
        assert session.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.seq > before_audit, AuditEvent.department == department)).scalar() == 0


def test_concurrent_retries_with_one_key_create_one_licence(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType
) -> None:
    import threading

    from certificates.issuance import IdempotentRequestInProgress

    holder = person_id()
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            licence = issue(engine, issuer, actor, department, holder_kind="person", holder_id=holder, idempotency_key="race")
            result = licence.id
        except IdempotentRequestInProgress:
            result = "in-progress"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Session(engine) as session:
        stored = session.exec(select(Licence).where(Licence.department_code == department)).all()
    assert len(stored) == 1
    assert set(outcomes) - {"in-progress"} == {stored[0].id}



def test_every_issued_licence_is_a_leaf_of_the_transparency_log(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType, keystore: TransitKeyStore
) -> None:
    from audit import merkle
    from audit.tlog import inclusion_proof, sign_tree_head
    from audit.treehead import LeafEntry, LeafKind, number_hash
    from certificates.issuance import transparency_digest
    from ecert.clock import as_utc

    licence = issue(engine, issuer, actor, department)
    head = sign_tree_head(engine, keystore, SystemClock())
    assert head is not None
    at = int(as_utc(licence.issued_at).timestamp() * 1000)
    leaf = LeafEntry(LeafKind.ISSUED, at, transparency_digest(licence), number_hash(licence.number)).leaf_hash
    with Session(engine) as session:
        proof = inclusion_proof(session, leaf_hash=leaf)
    assert proof.tree_head is not None
    merkle.verify_inclusion(proof.leaf_index, proof.tree_size, leaf, proof.path, proof.tree_head.root_hash)
    assert licence.log_index == proof.leaf_index  # the licence keeps where its leaf is

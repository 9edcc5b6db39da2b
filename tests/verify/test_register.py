"""The register read of link verification (one driver statement) against the ORM's view of the same rows."""

from __future__ import annotations

import base64
import dataclasses

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from audit import merkle, tlog
from certificates import records
from certificates.models import Licence
from ecert.db import DriverReads, make_reader, read_retrying
from ecert.runtime import Runtime
from verify.link import LinkVerifier, transparency_of
from verify.model import HistoryEntry
from verify.register import RegisterRecord
from ca.service import CertificateAuthority
from ecert.clock import SystemClock, as_utc
from ecert.db import session_scope
from signing.sealer import PadesSealer
from tests.verify.conftest import Issued, issue_for, new_department


_COLUMNS = [f.name for f in dataclasses.fields(RegisterRecord) if f.name not in ("successor_token", "history", "lower_proof")]


def test_the_record_is_what_the_orm_reads(runtime: Runtime, link_verifier: LinkVerifier, issued: Issued) -> None:
    with Session(runtime.engine) as session:
        for name, licence in issued.licences.items():
            row = session.get(Licence, licence.id)
            assert row is not None
            successor = session.exec(select(Licence.token).where(Licence.id == row.superseded_by_id)).first() \
                if row.superseded_by_id else None
            history = tuple(HistoryEntry(e.action, e.from_status, e.to_status, e.reason, as_utc(e.effective_at))
                            for e in records.history(session, row.id))
            expected = RegisterRecord(**{name: getattr(row, name) for name in _COLUMNS}, successor_token=successor,
                                      history=history)
            read = link_verifier.register.record(row.token)
            assert read is not None and read.lower_proof is not None, name
            assert dataclasses.replace(read, lower_proof=None) == expected, name
    assert link_verifier.register.record("0" * 32) is None
    tokens = [licence.token for licence in issued.licences.values()]
    assert set(link_verifier.register.records([*tokens, "0" * 32, tokens[0]])) == set(tokens)  # a batch, one statement
    old = link_verifier.register.record(issued.token("old"))
    assert old is not None and old.successor_token == issued.token("current")
    revoked = link_verifier.register.record(issued.token("revoked"))
    assert revoked is not None and [h.to_status for h in revoked.history] == ["valid", "revoked"]


def test_the_proof_read_with_the_record_proves_inclusion(runtime: Runtime, link_verifier: LinkVerifier, issued: Issued) -> None:
    for licence in issued.licences.values():
        record = link_verifier.register.record(licence.token)
        assert record is not None and record.log_index is not None
        found = transparency_of(record, link_verifier.prover)
        alone = transparency_of(dataclasses.replace(record, lower_proof=None), link_verifier.prover)  # its own read
        assert found == alone and found.logged and found.leaf_index == record.log_index
        assert found.leaf_index is not None and found.tree_size is not None and found.tree_head is not None
        with Session(runtime.engine) as session:
            root = tlog.root_hash(session, found.tree_size)
        merkle.verify_inclusion(found.leaf_index, found.tree_size, base64.b64decode(found.leaf_hash or ""),
                                [base64.b64decode(h) for h in found.audit_path], root)


@pytest.mark.postgres_only
def test_a_dead_connection_is_replaced_and_the_read_retried(runtime: Runtime) -> None:
    reader = make_reader(runtime.engine)
    reads = DriverReads(reader)
    statement = reads.statement("SELECT pg_backend_pid()")

    def terminate(pid: int) -> None:
        with runtime.engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    try:
        first = reads.rows(statement, {})[0][0]
        terminate(first)
        with pytest.raises(sa.exc.DBAPIError) as caught:
            reads.rows(statement, {})
        assert caught.value.connection_invalidated  # the pool dropped it
        second = reads.rows(statement, {})[0][0]
        assert second != first
        terminate(second)
        assert read_retrying(lambda: reads.rows(statement, {}))[0][0] not in (first, second)  # a retry, not an error
    finally:
        reader.dispose()


def test_a_licence_issued_before_log_index_is_proved_by_its_leaf_hash(
    runtime: Runtime, authority: CertificateAuthority, sealer: PadesSealer, link_verifier: LinkVerifier,
) -> None:
    licence = issue_for(runtime, authority, sealer, new_department(runtime, authority))[0]
    assert licence.log_index is not None
    tlog.sign_tree_head(runtime.engine, runtime.keystore, SystemClock())
    link_verifier.prover.head(covering=licence.log_index)  # the new head (an old row is in any recent one)
    with session_scope(runtime.engine) as session:  # as the migration leaves rows issued before it
        session.execute(sa.text("UPDATE licence SET log_index = NULL WHERE id = :id"), {"id": licence.id})
    record = link_verifier.register.record(licence.token)
    assert record is not None and record.log_index is None and record.lower_proof is None
    found = transparency_of(record, link_verifier.prover)
    assert found.logged and found.leaf_index == licence.log_index, found
    verdict = link_verifier.verify(licence.token)
    assert verdict.transparency == found

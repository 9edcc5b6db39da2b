"""The transparency log in the database: appends, node cache, signed tree heads and proofs on both backends."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit import merkle, tlog
from audit.tlog import append_leaf
from audit.treehead import LeafEntry, LeafKind, verify_tree_head
from ecert.clock import FixedClock, SystemClock
from ecert.db import session_scope
from keys import TransitKeyStore

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)


def _append(engine: Engine, uid: str, count: int, kind: str = "issued") -> list[tlog.LogEntry]:
    with session_scope(engine) as session:
        return [append_leaf(session, cert_digest=hashlib.sha256(f"{uid}/{i}".encode()).digest(),
                            licence_number=f"LIC-{uid}-{i}", kind=kind, at=T0 + dt.timedelta(seconds=i))
                for i in range(count)]


def _all_leaf_hashes(session: Session) -> list[bytes]:
    return [bytes(h) for h in session.execute(sa.text("SELECT leaf_hash FROM tlog_leaf ORDER BY idx")).scalars()]


def test_entries_hash_as_documented(engine: Engine, uid: str) -> None:
    entry = _append(engine, uid, 1)[0]
    encoded = entry.entry.encode()
    assert len(encoded) == 74 and encoded[:2] == b"\x01\x01"
    assert int.from_bytes(encoded[2:10], "big") == int(T0.timestamp() * 1000)
    assert encoded[42:] == hashlib.sha256(f"LIC-{uid}-0".encode()).digest()
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + encoded).digest()
    assert LeafEntry.decode(encoded) == entry.entry


def test_node_cache_and_roots_match_the_reference(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    _append(engine, uid, 70)  # crosses several 16-, 32- and 64-leaf boundaries
    with Session(engine) as session:
        leaves = _all_leaf_hashes(session)
        nodes = session.execute(sa.text("SELECT level, idx, hash FROM tlog_node")).all()
        assert len(leaves) == tlog.tree_size(session)
        for level, idx, digest in nodes:
            assert bytes(digest) == merkle.mth(leaves[idx << level:(idx + 1) << level])
        assert len(nodes) == sum(len(leaves) >> level for level in range(4, len(leaves).bit_length()))
        for size in {1, 15, 16, 17, 31, 32, 33, len(leaves) // 2, len(leaves)}:
            assert tlog.root_hash(session, size) == merkle.mth(leaves[:size])


def test_signed_tree_head_and_proofs(engine: Engine, keystore: TransitKeyStore, uid: str, tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.timezone.utc))
    tlog.sign_tree_head(engine, keystore, clock)
    with Session(engine) as session:
        first = tlog.latest_tree_head(session)
    mine = _append(engine, uid, 40)
    clock.advance(dt.timedelta(seconds=1))
    head = tlog.sign_tree_head(engine, keystore, clock)
    assert head is not None and first is not None and head.tree_size > first.tree_size
    key = keystore.public_key(tlog.KeyRef(head.key_name, head.key_version))
    assert verify_tree_head(head, key)  # type: ignore[arg-type]
    # An independent check of the signature: openssl over the documented TreeHeadDataV2 bytes.
    (tmp_path / "pub.pem").write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "sth.bin").write_bytes(head.data())
    (tmp_path / "sig.der").write_bytes(head.signature)
    out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                          str(tmp_path / "sig.der"), str(tmp_path / "sth.bin")], capture_output=True, text=True)
    assert out.stdout.strip() == "Verified OK", out
    with Session(engine) as session:
        for entry in mine[::7] + mine[-1:]:
            proof = tlog.inclusion_proof(session, leaf_hash=entry.leaf_hash)
            assert proof.leaf_index == entry.index and proof.tree_size == head.tree_size and proof.tree_head == head
            merkle.verify_inclusion(proof.leaf_index, proof.tree_size, entry.leaf_hash, list(proof.path), head.root_hash)
            by_index = tlog.inclusion_proof(session, leaf_index=entry.index, tree_size=entry.index + 1)
            merkle.verify_inclusion(entry.index, entry.index + 1, entry.leaf_hash, list(by_index.path),
                                    tlog.root_hash(session, entry.index + 1))
        consistency = tlog.consistency_proof(session, first=max(first.tree_size, 1), second=head.tree_size)
        if first.tree_size:
            merkle.verify_consistency(first.tree_size, head.tree_size, first.root_hash, head.root_hash, list(consistency.path))
        with pytest.raises(tlog.TreeSizeOutOfRange):
            tlog.inclusion_proof(session, leaf_index=0, tree_size=head.tree_size + 1)
        with pytest.raises(tlog.LeafNotFound):
            tlog.inclusion_proof(session, leaf_hash=hashlib.sha256(b"never logged").digest())
    assert tlog.sign_tree_head(engine, keystore, clock) is None  # nothing new to sign


def test_rolled_back_append_leaves_no_leaf(engine: Engine, uid: str) -> None:
    with Session(engine) as session:
        before = tlog.tree_size(session)
    with pytest.raises(RuntimeError):
        with session_scope(engine) as session:
            _ = append_leaf(session, cert_digest=b"\x01" * 32, licence_number=f"X-{uid}", kind=LeafKind.ISSUED, at=T0)
            raise RuntimeError("issuance failed after the append")
    after = _append(engine, uid, 1)[0]
    assert after.index == before


def test_concurrent_appenders_build_one_tree(engine: Engine, uid: str) -> None:
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        try:
            for i in range(10):
                with session_scope(engine) as session:
                    append_leaf(session, cert_digest=hashlib.sha256(f"{uid}/{n}/{i}".encode()).digest(),
                                licence_number=f"C-{uid}-{n}-{i}", kind="superseded" if i % 3 == 0 else "issued",
                                at=SystemClock().now())
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with Session(engine) as session:
        leaves = _all_leaf_hashes(session)
        indices = list(session.execute(sa.text("SELECT idx FROM tlog_leaf ORDER BY idx")).scalars())
        assert indices == list(range(len(leaves))) == list(range(tlog.tree_size(session)))
        assert tlog.root_hash(session, len(leaves)) == merkle.mth(leaves)


def test_a_tampered_leaf_no_longer_proves_against_the_signed_head(
    engine: Engine, keystore: TransitKeyStore, tampering: Session, uid: str
) -> None:
    entry = _append(engine, uid, 3)[1]
    head = tlog.sign_tree_head(engine, keystore, SystemClock())
    assert head is not None
    forged = LeafEntry(LeafKind.ISSUED, entry.entry.timestamp - 86_400_000, entry.entry.cert_digest, entry.entry.number_hash)
    tampering.execute(sa.text("UPDATE tlog_leaf SET timestamp = :t, leaf_hash = :h WHERE idx = :i"),
                      {"t": forged.timestamp, "h": forged.leaf_hash, "i": entry.index})
    proof = tlog.inclusion_proof(tampering, leaf_index=entry.index)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(entry.index, head.tree_size, forged.leaf_hash, list(proof.path), head.root_hash)
    assert tlog.root_hash(tampering, head.tree_size) != head.root_hash


def test_upper_nodes_pack_each_level_in_order() -> None:
    """Hashes arriving in order are packed; one ahead of its level's run waits aside until the gap fills; nothing below
    the kept level and nothing beyond the limit is kept."""
    def h(level: int, index: int) -> bytes:
        return hashlib.sha256(f"{level}/{index}".encode()).digest()

    upper = tlog.UpperNodes(level=5, limit=6)
    upper.keep({(5, 0): h(5, 0), (5, 2): h(5, 2), (4, 0): h(4, 0), (6, 0): h(6, 0)})
    assert (len(upper), upper.get(5, 0), upper.get(5, 1), upper.get(5, 2), upper.get(4, 0)) == (3, h(5, 0), None, h(5, 2), None)
    upper.keep({(5, 1): h(5, 1), (5, 0): h(5, 0)})  # fills the gap; a hash already kept is not counted again
    assert len(upper) == 4 and [upper.get(5, i) for i in range(3)] == [h(5, i) for i in range(3)]
    assert upper._loose == {}, "the run of level 5 is packed now"
    upper.keep({(5, 3): h(5, 3), (5, 4): h(5, 4), (5, 5): h(5, 5)})
    assert len(upper) == 6 and upper.get(5, 4) == h(5, 4) and upper.get(5, 5) is None, "bounded"


@pytest.mark.parametrize("level", [4, 5, 10])
def test_the_prover_gives_the_general_paths(engine: Engine, keystore: TransitKeyStore, uid: str, level: int) -> None:
    """InclusionProver (lower path in one statement, upper tree and right edge in memory) proves every leaf exactly
    as inclusion_proof does, for leaves in complete subtrees of ``level`` and at the right edge, as the log grows."""
    clock = FixedClock(dt.datetime.now(dt.timezone.utc))
    _append(engine, uid, 45)
    prover = tlog.InclusionProver(engine, level=level, head_seconds=0)  # the head is read on every call
    for round_ in range(2):
        tlog.sign_tree_head(engine, keystore, clock)
        head = prover.head()
        assert head is not None
        with Session(engine) as session:
            leaves = _all_leaf_hashes(session)[:head.tree_size]
            for index in sorted({*range(0, len(leaves), 7), *range(max(0, len(leaves) - 40), len(leaves))}):
                fast = prover.prove(leaves[index], head, index)
                general = tlog.inclusion_proof(session, leaf_index=index, head=head)
                assert fast == general
                merkle.verify_inclusion(index, head.tree_size, leaves[index], list(fast.path), head.root_hash)
                assert prover.prove(leaves[index], head) == general  # no index: found by its hash
            with pytest.raises(tlog.LeafNotFound):
                prover.prove(leaves[1], head, 0)  # the leaf at index 0 is another one
        _append(engine, f"{uid}-{round_}", 19)  # the next head has another right edge
        clock.advance(dt.timedelta(seconds=1))
    assert bool(len(prover.upper)) == (head.tree_size >= 1 << level), "the upper tree is kept in memory"

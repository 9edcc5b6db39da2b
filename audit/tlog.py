"""The transparency log of issued e-licences: an append-only RFC 9162 Merkle tree in the database.

Storage: ``tlog_leaf`` holds every entry and its leaf hash; ``tlog_node`` caches the hash of every
complete subtree of 16 or more leaves (level >= 4), written as the subtree completes, so any
subtree hash is one indexed read or a rehash of at most 15 leaf hashes. An inclusion or
consistency proof at 10 million leaves therefore costs two queries and a few dozen hashes.

:func:`append_leaf` runs in the caller's transaction (issuance calls it next to
``record_event``); it serialises on ``tlog_head`` after taking the ``audit_head`` row lock, so the
lock order is always audit then log and the two never deadlock. Tree heads are signed outside
those transactions (:func:`sign_tree_head`), from committed state only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from audit import merkle
from audit.models import TlogLeaf, TlogNode, TlogTreeHead
from audit.treehead import LeafEntry, LeafKind, TreeHead, number_hash, tree_head_data
from ecert.clock import Clock, as_utc
from ecert.errors import InvalidInput, NotFound
from keys import KeyRef, KeyStore, KeyType

__all__ = [
    "LOG_KEY",
    "NODE_MIN_LEVEL",
    "LogEntry",
    "InclusionProof",
    "ConsistencyProof",
    "LeafNotFound",
    "TreeHeadNotFound",
    "TreeSizeOutOfRange",
    "append_leaf",
    "tree_size",
    "root_hash",
    "subtree_hashes",
    "inclusion_proof",
    "consistency_proof",
    "sign_tree_head",
    "maybe_sign_tree_head",
    "latest_tree_head",
    "tree_head_at",
    "tree_heads",
    "entries",
    "log_public_keys",
]

log = logging.getLogger(__name__)
LOG_KEY = "transparency-log"
NODE_MIN_LEVEL = 4


class LeafNotFound(NotFound):
    slug = "leaf-not-found"
    title = "No such leaf in the transparency log"


class TreeHeadNotFound(NotFound):
    slug = "tree-head-not-found"
    title = "No signed tree head of that size"


class TreeSizeOutOfRange(InvalidInput):
    slug = "tree-size-out-of-range"
    title = "The tree size is not covered by a signed tree head"


@dataclass(frozen=True)
class LogEntry:
    index: int
    leaf_hash: bytes
    entry: LeafEntry


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]
    tree_head: TreeHead | None  # the signed head of ``tree_size`` when there is one


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    path: tuple[bytes, ...]


def _ms(at: dt.datetime) -> int:
    return int(as_utc(at).timestamp() * 1000)


_LOCK_AUDIT = sa.text("UPDATE audit_head SET seq = seq WHERE id = 1")
_CLAIM = sa.text("UPDATE tlog_head SET size = size + 1 WHERE id = 1 RETURNING size")
_LEAF_COLUMNS = "INSERT INTO tlog_leaf (idx, leaf_hash, kind, timestamp, cert_digest, number_hash) "
_INSERT_LEAF = sa.text(_LEAF_COLUMNS + "VALUES (:idx, :leaf_hash, :kind, :timestamp, :cert_digest, :number_hash)")
_APPEND_COMBINED = sa.text(
    "WITH h AS (UPDATE tlog_head SET size = size + 1 WHERE id = 1 RETURNING size) " + _LEAF_COLUMNS
    + "SELECT size - 1, :leaf_hash, :kind, :timestamp, :cert_digest, :number_hash FROM h RETURNING idx"
)


def append_leaf(
    session: Session, *, cert_digest: bytes, licence_number: str, kind: LeafKind | str, at: dt.datetime
) -> LogEntry:
    """Append one entry in ``session``'s transaction; it is committed (or not) with the caller's work."""
    kind = LeafKind[kind.upper()] if isinstance(kind, str) else LeafKind(kind)
    entry = LeafEntry(kind, _ms(at), cert_digest, number_hash(licence_number))
    digest = entry.leaf_hash
    params = {"leaf_hash": digest, "kind": int(kind), "timestamp": entry.timestamp, "cert_digest": entry.cert_digest,
              "number_hash": entry.number_hash}
    session.execute(_LOCK_AUDIT)  # lock order: audit trail, then log
    if session.get_bind().dialect.name == "postgresql":  # claim the index and insert in one round trip
        index = int(session.execute(_APPEND_COMBINED, params).scalar_one())
    else:
        index = int(session.execute(_CLAIM).scalar_one()) - 1
        session.execute(_INSERT_LEAF, {"idx": index, **params})
    _cache_completed_subtrees(session, index, digest)
    return LogEntry(index, digest, entry)


def _cache_completed_subtrees(session: Session, index: int, digest: bytes) -> None:
    end = index + 1
    if end % (1 << NODE_MIN_LEVEL):
        return
    start = end - (1 << NODE_MIN_LEVEL)
    leaves = session.execute(
        sa.select(TlogLeaf.leaf_hash).where(TlogLeaf.idx >= start, TlogLeaf.idx < end).order_by(TlogLeaf.idx)  # type: ignore[arg-type]
    ).scalars().all()
    current = merkle.mth(list(leaves))
    level = NODE_MIN_LEVEL
    session.add(TlogNode(level=level, idx=(end >> level) - 1, hash=current))
    while end % (1 << (level + 1)) == 0:
        left = session.execute(
            sa.select(TlogNode.hash).where(TlogNode.level == level, TlogNode.idx == (end >> level) - 2)
        ).scalar_one()
        current = merkle.node_hash(left, current)
        level += 1
        session.add(TlogNode(level=level, idx=(end >> level) - 1, hash=current))
    session.flush()


def tree_size(session: Session) -> int:
    return int(session.execute(sa.text("SELECT size FROM tlog_head WHERE id = 1")).scalar_one())


def subtree_hashes(session: Session, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each aligned leaf range, reading cached nodes and at most 15 leaves per small subtree."""
    plan = [merkle.complete_subtrees(a, b) for a, b in ranges]
    big = {(lv, i) for parts in plan for lv, i in parts if lv >= NODE_MIN_LEVEL}
    small = [(lv, i) for parts in plan for lv, i in parts if lv < NODE_MIN_LEVEL]
    nodes = _nodes(session, big)
    leaf_ids = sorted({j for lv, i in small for j in range(i << lv, (i + 1) << lv)})
    leaves = {}
    if leaf_ids:  # literal integers we computed ourselves: no SQL compilation on this hot path
        rows = _raw(session, f"SELECT idx, leaf_hash FROM tlog_leaf WHERE idx IN ({','.join(map(str, leaf_ids))})")
        leaves = {int(i): bytes(h) for i, h in rows}
    out = []
    for parts in plan:
        hashes = []
        for lv, i in parts:
            if lv >= NODE_MIN_LEVEL:
                hashes.append(nodes[(lv, i)])
            else:
                hashes.append(merkle.mth([leaves[j] for j in range(i << lv, (i + 1) << lv)]))
        out.append(merkle.fold(hashes))
    return out


def _raw(session: Session, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in session.connection().exec_driver_sql(sql).fetchall()]


def _nodes(session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    keys = list(keys)
    if not keys:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in keys:
        by_level.setdefault(level, []).append(index)
    # One indexed probe per level (row-value IN lists are not index lookups on every backend);
    # the SQL holds only integers we computed, so it is built as text and skips SQL compilation.
    condition = " OR ".join(f"(level = {lv} AND idx IN ({','.join(map(str, ids))}))" for lv, ids in by_level.items())
    rows = _raw(session, f"SELECT level, idx, hash FROM tlog_node WHERE {condition}")
    found = {(int(lv), int(i)): bytes(h) for lv, i, h in rows}
    missing = [k for k in keys if k not in found]
    if missing:
        raise LookupError(f"transparency log node cache is missing {missing[:3]}")
    return found


def root_hash(session: Session, size: int) -> bytes:
    return subtree_hashes(session, [(0, size)])[0] if size else merkle.EMPTY_ROOT


def _signed_size(session: Session, size: int | None) -> tuple[int, TreeHead | None]:
    """The requested size (default: the latest signed one); it may not exceed the latest signed size."""
    latest = latest_tree_head(session)
    if latest is None:
        raise TreeHeadNotFound("the transparency log has no signed tree head yet")
    if size is None:
        return latest.tree_size, latest
    if not 0 < size <= latest.tree_size:
        raise TreeSizeOutOfRange(f"tree_size must be between 1 and {latest.tree_size}, the latest signed size")
    return size, tree_head_at(session, size, missing_ok=True)


def inclusion_proof(
    session: Session, *, leaf_hash: bytes | None = None, leaf_index: int | None = None, tree_size: int | None = None
) -> InclusionProof:
    """The audit path of a leaf (by hash or index) in a signed tree (default: the latest signed head)."""
    size, head = _signed_size(session, tree_size)
    if leaf_hash is not None:
        # No ORDER BY/LIMIT: that tempts planners into walking the primary key instead of the hash index.
        found = min(session.execute(
            sa.select(TlogLeaf.idx).where(TlogLeaf.leaf_hash == leaf_hash, TlogLeaf.idx < size)  # type: ignore[arg-type]
        ).scalars().all(), default=None)
        if found is None:
            raise LeafNotFound(f"no leaf with that hash in the tree of size {size}")
        leaf_index = int(found)
    if leaf_index is None or not 0 <= leaf_index < size:
        raise LeafNotFound(f"leaf index {leaf_index} is not in the tree of size {size}")
    if leaf_hash is None:
        leaf_hash = bytes(session.execute(sa.select(TlogLeaf.leaf_hash).where(TlogLeaf.idx == leaf_index)).scalar_one())
    path = subtree_hashes(session, merkle.inclusion_ranges(leaf_index, size))
    return InclusionProof(leaf_index, size, leaf_hash, tuple(path), head)


def consistency_proof(session: Session, *, first: int, second: int) -> ConsistencyProof:
    """PROOF(first, D[second]) between two sizes no larger than the latest signed size."""
    _signed_size(session, second)
    if not 0 < first <= second:
        raise InvalidInput("first must be between 1 and second", errors=[{"pointer": "query:/first", "detail": "out of range"}])
    return ConsistencyProof(first, second, tuple(subtree_hashes(session, merkle.consistency_ranges(first, second))))


# -- signed tree heads ----------------------------------------------------------------------

def _head(row: TlogTreeHead) -> TreeHead:
    return TreeHead(int(row.tree_size), bytes(row.root_hash), int(row.timestamp), row.key_name, row.key_version, bytes(row.signature))


def latest_tree_head(session: Session) -> TreeHead | None:
    row = session.exec(select(TlogTreeHead).order_by(TlogTreeHead.tree_size.desc()).limit(1)).first()  # type: ignore[attr-defined]
    return _head(row) if row is not None else None


def tree_head_at(session: Session, size: int, *, missing_ok: bool = False) -> TreeHead | None:
    row = session.get(TlogTreeHead, size)
    if row is None and not missing_ok:
        raise TreeHeadNotFound(f"no signed tree head of size {size}")
    return _head(row) if row is not None else None


def tree_heads(session: Session, *, after: int = -1, limit: int = 100) -> list[TreeHead]:
    rows = session.exec(
        select(TlogTreeHead).where(TlogTreeHead.tree_size > after).order_by(TlogTreeHead.tree_size).limit(limit)  # type: ignore[arg-type]
    ).all()
    return [_head(r) for r in rows]


def entries(session: Session, *, start: int, end: int) -> list[LogEntry]:
    rows = session.exec(
        select(TlogLeaf).where(TlogLeaf.idx >= start, TlogLeaf.idx < end).order_by(TlogLeaf.idx)  # type: ignore[arg-type]
    ).all()
    return [
        LogEntry(int(r.idx), bytes(r.leaf_hash),
                 LeafEntry(LeafKind(r.kind), int(r.timestamp), bytes(r.cert_digest), bytes(r.number_hash)))
        for r in rows
    ]


def log_public_keys(keystore: KeyStore) -> dict[int, str]:
    """PEM of every version of the log key (old versions keep verifying old heads)."""
    info = keystore.create(LOG_KEY, KeyType.EC_P256)
    return {v: kv.public_key_pem or "" for v, kv in sorted(info.versions.items())}


def sign_tree_head(engine: Engine, keystore: KeyStore, clock: Clock) -> TreeHead | None:
    """Sign the committed tree now (None if that size is already signed)."""
    with Session(engine) as session:
        size = tree_size(session)
        previous = latest_tree_head(session)
        if previous is not None and previous.tree_size >= size:
            return None
        root = root_hash(session, size)
    timestamp = max(_ms(clock.now()), previous.timestamp if previous else 0)
    key: KeyRef = keystore.create(LOG_KEY, KeyType.EC_P256).latest
    signature = keystore.sign(key, hashlib.sha256(tree_head_data(timestamp, size, root)).digest())
    head = TreeHead(size, root, timestamp, signature.key.name, signature.key.version, signature.value)
    try:
        with Session(engine) as session:
            session.add(TlogTreeHead(tree_size=size, root_hash=root, timestamp=timestamp, key_name=head.key_name,
                                     key_version=head.key_version, signature=head.signature))
            session.commit()
    except sa.exc.IntegrityError:
        return None
    log.info("signed tree head", extra={"tree_size": size})
    return head


def maybe_sign_tree_head(engine: Engine, keystore: KeyStore, clock: Clock, *, every_seconds: float = 10.0,
                         every_leaves: int = 1000) -> TreeHead | None:
    """Sign a new head when the tree grew and ``every_leaves`` or ``every_seconds`` have passed (or none exists)."""
    with Session(engine) as session:
        size = tree_size(session)
        previous = latest_tree_head(session)
    if previous is not None and (size <= previous.tree_size or (
        size - previous.tree_size < every_leaves and _ms(clock.now()) - previous.timestamp < every_seconds * 1000
    )):
        return None
    return sign_tree_head(engine, keystore, clock)

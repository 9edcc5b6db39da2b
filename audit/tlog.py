"""The transparency log of issued e-licences: an append-only RFC 9162 Merkle tree in the database.

Storage: ``tlog_leaf`` holds every entry and its leaf hash; ``tlog_node`` caches the hash of every
complete subtree of 16 or more leaves (level >= 4), written as the subtree completes, so any
subtree hash is one indexed read or a rehash of at most 15 leaf hashes. An inclusion or
consistency proof at 10 million leaves therefore costs one query (two when the leaf is found by its hash) and a
few dozen hashes; :class:`UpperNodes` lets a busy reader keep the upper part of the tree in memory.

:func:`append_leaf` runs in the caller's transaction (issuance calls it next to
``record_event``); it serialises on ``tlog_head`` after taking the ``audit_head`` row lock, so the
lock order is always audit then log and the two never deadlock. Tree heads are signed outside
those transactions (:func:`sign_tree_head`), from committed state only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit import merkle
from audit.models import TlogLeaf, TlogNode, TlogTreeHead
from audit.treehead import LeafEntry, LeafKind, TreeHead, number_hash, tree_head_data
from ecert.clock import Clock, as_utc
from ecert.db import DriverReads
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
    "UpperNodes",
    "InclusionProver",
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
        sa.select(col(TlogLeaf.leaf_hash)).where(col(TlogLeaf.idx) >= start, col(TlogLeaf.idx) < end).order_by(col(TlogLeaf.idx))
    ).scalars().all()
    current = merkle.mth(list(leaves))
    level = NODE_MIN_LEVEL
    session.add(TlogNode(level=level, idx=(end >> level) - 1, hash=current))
    while end % (1 << (level + 1)) == 0:
        left = session.execute(
            sa.select(col(TlogNode.hash)).where(col(TlogNode.level) == level, col(TlogNode.idx) == (end >> level) - 2)
        ).scalar_one()
        current = merkle.node_hash(left, current)
        level += 1
        session.add(TlogNode(level=level, idx=(end >> level) - 1, hash=current))
    session.flush()


def tree_size(session: Session) -> int:
    return int(session.execute(sa.text("SELECT size FROM tlog_head WHERE id = 1")).scalar_one())


class UpperNodes:
    """Hashes of complete subtrees at ``level`` and above, remembered in memory: a complete subtree never changes,
    so a reader that proves inclusion over and over reads only the lower part of each path from the database.

    Each level's hashes from index 0 on are packed in one ``bytearray`` (32 bytes a hash: 10 million leaves need
    1.25 million at level 4, 40 MB), the few kept out of order in a dict until the gap before them fills.
    Thread-safe for the way it is used (reads and appends under the interpreter lock). Bounded: beyond ``limit``
    hashes nothing more is kept.
    """

    def __init__(self, level: int = 10, limit: int = 1 << 21) -> None:
        self.level = max(level, NODE_MIN_LEVEL)
        self.limit = limit
        self._packed: dict[int, bytearray] = {}  # level -> hashes of indices 0, 1, ... in order
        self._loose: dict[tuple[int, int], bytes] = {}  # (level, index) beyond the packed run of its level
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, level: int, index: int) -> bytes | None:
        packed = self._packed.get(level)
        if packed is not None and index < len(packed) >> 5:
            return bytes(packed[index << 5:(index + 1) << 5])
        return self._loose.get((level, index)) if self._loose else None

    def keep(self, found: dict[tuple[int, int], bytes]) -> None:
        for (level, index), value in sorted(found.items()):
            if level < self.level or self._count >= self.limit or self.get(level, index) is not None:
                continue
            packed = self._packed.setdefault(level, bytearray())
            if index != len(packed) >> 5:
                self._loose[(level, index)] = bytes(value)
                self._count += 1
                continue
            packed += value
            self._count += 1
            while (level, len(packed) >> 5) in self._loose:  # the gap before loose hashes is filled: pack them too
                packed += self._loose.pop((level, len(packed) >> 5))


def subtree_hashes(session: Session, ranges: Sequence[tuple[int, int]], *, upper: UpperNodes | None = None,
                   leaf_ids: Iterable[int] = ()) -> tuple[list[bytes], dict[int, bytes]]:
    """MTH of each aligned leaf range, from cached nodes and at most 15 leaf hashes per small subtree, in one
    query; also the hashes of ``leaf_ids`` (read in the same query)."""
    plan = [merkle.complete_subtrees(a, b) for a, b in ranges]
    wanted = {(lv, i) for parts in plan for lv, i in parts if lv >= NODE_MIN_LEVEL}
    nodes: dict[tuple[int, int], bytes] = {}
    if upper is not None:
        for lv, i in wanted:
            known = upper.get(lv, i)
            if known is not None:
                nodes[(lv, i)] = known
    small = [(lv, i) for parts in plan for lv, i in parts if lv < NODE_MIN_LEVEL]
    leaf_set = {j for lv, i in small for j in range(i << lv, (i + 1) << lv)} | set(leaf_ids)
    read, leaves = _read_nodes_and_leaves(session, [k for k in wanted if k not in nodes], sorted(leaf_set))
    if upper is not None:
        upper.keep(read)
    nodes.update(read)
    out = []
    for parts in plan:
        hashes = []
        for lv, i in parts:
            if lv >= NODE_MIN_LEVEL:
                hashes.append(nodes[(lv, i)])
            else:
                hashes.append(merkle.mth([leaves[j] for j in range(i << lv, (i + 1) << lv)]))
        out.append(merkle.fold(hashes))
    return out, leaves


def _read_nodes_and_leaves(session: Session, keys: list[tuple[int, int]],
                           leaf_ids: list[int]) -> tuple[dict[tuple[int, int], bytes], dict[int, bytes]]:
    """Cached nodes and leaf hashes in one statement. The SQL holds only integers we computed, so it is built as
    text and skips SQL compilation; one indexed probe per level (row-value IN lists are not index lookups on
    every backend)."""
    parts = []
    if keys:
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(level, []).append(index)
        condition = " OR ".join(f"(level = {lv} AND idx IN ({','.join(map(str, ids))}))" for lv, ids in by_level.items())
        parts.append(f"SELECT level, idx, hash FROM tlog_node WHERE {condition}")
    if leaf_ids:
        parts.append(f"SELECT -1, idx, leaf_hash FROM tlog_leaf WHERE idx IN ({','.join(map(str, leaf_ids))})")
    if not parts:
        return {}, {}
    nodes: dict[tuple[int, int], bytes] = {}
    leaves: dict[int, bytes] = {}
    for level, index, value in session.connection().exec_driver_sql(" UNION ALL ".join(parts)).fetchall():
        if level < 0:
            leaves[int(index)] = bytes(value)
        else:
            nodes[(int(level), int(index))] = bytes(value)
    missing = [k for k in keys if k not in nodes]
    if missing:
        raise LookupError(f"transparency log node cache is missing {missing[:3]}")
    return nodes, leaves


class InclusionProver:
    """Inclusion proofs for a busy reader (link verification) in one prepared statement each.

    The latest signed head is held for ``head_seconds`` (a proof against it stays valid as the log grows), the
    tree at ``level`` and above is kept in memory (:class:`UpperNodes`, loaded on first use; by default the lowest
    level that fits ``memory_nodes`` hashes at the log's size when the prover is made: 4 at 10 million leaves,
    1.25 million hashes in 40 MB, so a proof reads only the leaf's group of 16 leaves), and the hashes of the
    head's right edge are computed once per head. What remains of a path is the leaf's group of 16 leaves and one
    node per level below ``level`` (none at level 4): the select-list items of :meth:`columns`, read in a statement of their own or in
    the caller's (link verification reads them with the licence row). Leaves in the last, incomplete subtree of
    ``level`` take the general path (:func:`inclusion_proof`).
    """

    def __init__(self, engine: Engine, *, level: int | None = None, head_seconds: float = 5.0,
                 memory_nodes: int = 1 << 21) -> None:
        self.engine = engine
        self.reads = DriverReads(engine)
        if level is None:  # the lowest level whose subtrees fit ``memory_nodes`` hashes (64 MB) at today's size
            with Session(engine) as session:
                size = tree_size(session)
            level = next(lv for lv in range(NODE_MIN_LEVEL, 64) if (size >> lv) * 2 <= memory_nodes)
        self.upper = UpperNodes(level, limit=2 * memory_nodes)
        self.head_seconds = head_seconds
        self._head: tuple[float, TreeHead | None] = (0.0, None)
        self._edges: dict[tuple[int, int], bytes] = {}  # right-edge range -> hash, for the held head's size
        self._levels = range(NODE_MIN_LEVEL, self.upper.level)
        self._lower = self.reads.statement("SELECT " + self.columns("%(index)s"))
        self._nodes_after = self.reads.statement(
            "SELECT level, idx, hash FROM tlog_node WHERE (level, idx) > (%(level)s, %(idx)s) ORDER BY level, idx LIMIT %(page)s")

    def columns(self, index: str) -> str:
        """SQL select-list items that read the lower part of the proof of the leaf at SQL expression ``index``: the
        hashes of the 16 leaves of its group as one hex string (leaf order), then its sibling node at each level up
        to ``level`` (NULL where there is none). Each node is one primary-key probe; the leaves are one range scan
        on PostgreSQL and 16 probes on SQLite (whose aggregates keep no order before 3.44)."""
        group = 1 << NODE_MIN_LEVEL
        first = f"({index}) / {group} * {group}"
        if self.reads.postgres:
            leaves = (f"(SELECT encode(string_agg(leaf_hash, ''::bytea ORDER BY idx), 'hex') FROM tlog_leaf "
                      f"WHERE idx >= {first} AND idx < {first} + {group})")
        else:
            leaves = " || ".join(f"hex((SELECT leaf_hash FROM tlog_leaf WHERE idx = {first} + {k}))" for k in range(group))
        # the sibling of q = index >> lv is q ^ 1, written q / 2 * 4 + 1 - q (no operator that differs between backends)
        nodes = [f"(SELECT hash FROM tlog_node WHERE level = {lv} AND idx = ({index}) / {2 << lv} * 4 + 1 - ({index}) / {1 << lv})"
                 for lv in self._levels]
        return ", ".join([f"({leaves})", *nodes])

    @property
    def width(self) -> int:
        """How many items :meth:`columns` gives."""
        return 1 + len(self._levels)

    def head(self, covering: int | None = None) -> TreeHead | None:
        """The latest signed tree head, read again once ``head_seconds`` have passed, or at once when the held head
        does not cover leaf index ``covering`` (a licence issued since may be in a newer one)."""
        now = time.monotonic()
        expires, head = self._head
        if expires > now and (covering is None or (head is not None and covering < head.tree_size)):
            return head
        if expires == 0.0:  # first use: the upper tree (1.25 million hashes at 10 million leaves)
            self._load_upper()
        with Session(self.engine) as session:
            latest = latest_tree_head(session)
        if latest is None or head is None or latest.tree_size != head.tree_size:
            self._edges = {}
        self._head = (now + self.head_seconds, latest)
        return latest

    def _load_upper(self, page: int = 50_000) -> None:
        """Every cached node at the kept level and above, a page at a time, in (level, index) order: each level packs
        as it arrives, and a worker's memory stays near what it keeps."""
        after = (self.upper.level, -1)
        while True:
            rows = self.reads.rows(self._nodes_after, {"level": after[0], "idx": after[1], "page": page})
            self.upper.keep({(int(lv), int(i)): bytes(h) for lv, i, h in rows})
            if len(rows) < page:
                return
            after = (int(rows[-1][0]), int(rows[-1][1]))

    def prove(self, leaf_hash: bytes, head: TreeHead, leaf_index: int | None = None,
              lower: Sequence[Any] | None = None) -> InclusionProof:
        """The proof of the leaf (at ``leaf_index`` when known, else found by its hash) in ``head``'s tree, from the
        values of :meth:`columns` for it when the caller read them; :class:`LeafNotFound` when it is not there."""
        size, level = head.tree_size, self.upper.level
        if leaf_index is None or not 0 <= leaf_index < size or ((leaf_index >> level) + 1) << level > size:
            with Session(self.engine) as session:
                return inclusion_proof(session, leaf_hash=leaf_hash, leaf_index=leaf_index, head=head, upper=self.upper)
        if lower is None:
            lower = self.reads.rows(self._lower, {"index": leaf_index})[0]
        group = leaf_index >> NODE_MIN_LEVEL << NODE_MIN_LEVEL
        packed = bytes.fromhex(lower[0] or "")  # the first column is hex, the rest node hashes
        row = [packed[k:k + 32] for k in range(0, len(packed), 32)]
        at = leaf_index - group
        if len(row) != 1 << NODE_MIN_LEVEL or row[at] != leaf_hash:
            raise LeafNotFound(f"the leaf at index {leaf_index} is not the leaf asked for")
        path: list[bytes | None] = []
        for _ in range(NODE_MIN_LEVEL):  # inside the leaf's group: its 16 leaves, hashed level by level
            path.append(row[at ^ 1])
            row = merkle.parents(row)
            at >>= 1
        for lv, value in zip(self._levels, lower[1:]):  # up to ``level``: the sibling nodes read with the leaves
            if value is None:
                raise LookupError(f"transparency log node cache is missing {(lv, (leaf_index >> lv) ^ 1)}")
            path.append(bytes(value))
        spans: dict[int, tuple[int, int]] = {}  # path position -> leaf range, for hashes that memory lacks
        lv, node = level, leaf_index >> level
        while node or 1 << lv < size:  # above: the sibling at each level (RFC 9162 PATH, bottom up), from memory
            if node & 1:
                span, known = ((node - 1) << lv, node << lv), self.upper.get(lv, node - 1)
            elif (node + 1) << lv < size:
                span = ((node + 1) << lv, min((node + 2) << lv, size))
                known = self.upper.get(lv, node + 1) if span[1] - span[0] == 1 << lv else self._edges.get(span)
            else:  # no sibling at this level: the leaf's subtree is the right edge
                lv, node = lv + 1, node >> 1
                continue
            if known is None:
                spans[len(path)] = span
            path.append(known)
            lv, node = lv + 1, node >> 1
        if spans:  # nodes not in memory yet, or a new head's right edge: read once, then remembered
            with Session(self.engine) as session:
                found, _ = subtree_hashes(session, list(spans.values()), upper=self.upper)
            for (i, span), value in zip(spans.items(), found):
                path[i] = value
                if span[1] == size:
                    self._edges[span] = value
        return InclusionProof(leaf_index, size, leaf_hash, tuple(p for p in path if p is not None), head)


def root_hash(session: Session, size: int) -> bytes:
    return subtree_hashes(session, [(0, size)])[0][0] if size else merkle.EMPTY_ROOT


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
    session: Session, *, leaf_hash: bytes | None = None, leaf_index: int | None = None, tree_size: int | None = None,
    head: TreeHead | None = None, upper: UpperNodes | None = None,
) -> InclusionProof:
    """The audit path of a leaf (by hash or index, or both: then the leaf at that index must have that hash) in a
    signed tree: ``head`` when the caller already holds a signed head, else ``tree_size``'s or the latest one.
    ``upper`` remembers the upper part of the tree between calls."""
    size, head = (head.tree_size, head) if head is not None else _signed_size(session, tree_size)
    if leaf_hash is not None and leaf_index is None:
        # No ORDER BY/LIMIT: that tempts planners into walking the primary key instead of the hash index.
        found = min(session.execute(
            sa.select(col(TlogLeaf.idx)).where(col(TlogLeaf.leaf_hash) == leaf_hash, col(TlogLeaf.idx) < size)
        ).scalars().all(), default=None)
        if found is None:
            raise LeafNotFound(f"no leaf with that hash in the tree of size {size}")
        leaf_index = int(found)
    if leaf_index is None or not 0 <= leaf_index < size:
        raise LeafNotFound(f"leaf index {leaf_index} is not in the tree of size {size}")
    hashes, leaves = subtree_hashes(session, merkle.inclusion_ranges(leaf_index, size), upper=upper, leaf_ids=[leaf_index])
    stored = leaves.get(leaf_index)
    if stored is None or (leaf_hash is not None and stored != leaf_hash):
        raise LeafNotFound(f"the leaf at index {leaf_index} is not the leaf asked for")
    return InclusionProof(leaf_index, size, stored, tuple(hashes), head)


def consistency_proof(session: Session, *, first: int, second: int) -> ConsistencyProof:
    """PROOF(first, D[second]) between two sizes no larger than the latest signed size."""
    _signed_size(session, second)
    if not 0 < first <= second:
        raise InvalidInput("first must be between 1 and second", errors=[{"pointer": "query:/first", "detail": "out of range"}])
    return ConsistencyProof(first, second, tuple(subtree_hashes(session, merkle.consistency_ranges(first, second))[0]))


# -- signed tree heads ----------------------------------------------------------------------

def _head(row: TlogTreeHead) -> TreeHead:
    return TreeHead(int(row.tree_size), bytes(row.root_hash), int(row.timestamp), row.key_name, row.key_version, bytes(row.signature))


def latest_tree_head(session: Session) -> TreeHead | None:
    row = session.exec(select(TlogTreeHead).order_by(col(TlogTreeHead.tree_size).desc()).limit(1)).first()
    return _head(row) if row is not None else None


def tree_head_at(session: Session, size: int, *, missing_ok: bool = False) -> TreeHead | None:
    row = session.get(TlogTreeHead, size)
    if row is None and not missing_ok:
        raise TreeHeadNotFound(f"no signed tree head of size {size}")
    return _head(row) if row is not None else None


def tree_heads(session: Session, *, after: int = -1, limit: int = 100) -> list[TreeHead]:
    rows = session.exec(
        select(TlogTreeHead).where(TlogTreeHead.tree_size > after).order_by(col(TlogTreeHead.tree_size)).limit(limit)
    ).all()
    return [_head(r) for r in rows]


def entries(session: Session, *, start: int, end: int) -> list[LogEntry]:
    rows = session.exec(
        select(TlogLeaf).where(TlogLeaf.idx >= start, TlogLeaf.idx < end).order_by(col(TlogLeaf.idx))
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

"""Audit trail and transparency log: append cost, inclusion proofs at a large tree, tree-head signing.

Run: ``.venv/bin/python -m bench.audit [--leaves 1000000] [--seconds 5] [--postgres URL]``

Each backend gets a fresh database (a temp SQLite file; a throwaway schema on PostgreSQL, default
the local test server) and a throwaway embedded OpenBao for the signing keys. The large tree is
bulk-loaded (leaf rows plus the same level >= 4 node cache ``append_leaf`` keeps, computed here
in Python), then proofs are generated through the product code (``audit.tlog``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit import merkle, record_event, tlog
from audit.checkpoints import take_checkpoint
from audit.tlog import NODE_MIN_LEVEL, append_leaf
from bench.common import peak_rss_mib, percentile, rate, throwaway_openbao, write_results
from ecert.clock import SystemClock
from ecert.db import make_engine, migrate, session_scope

CHUNK_LEVEL = 16  # leaves are hashed in aligned chunks of 65,536


@contextmanager
def fresh_engine(backend: str, postgres_url: str) -> Iterator[Engine]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            engine = make_engine(f"sqlite:///{directory}/bench.db")
            migrate(engine)
            yield engine
            engine.dispose()
        return
    schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _for(seconds: float, step: Any) -> tuple[int, list[float]]:
    count, latencies, deadline = 0, [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        count += step()
        latencies.append(time.perf_counter() - t0)
    return count, latencies


# -- append cost -------------------------------------------------------------------------------

def bench_appends(engine: Engine, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    counter = iter(range(10**9))

    def one_event() -> int:
        with session_scope(engine) as session:
            record_event(session, action="bench.event", actor="bench", target="t:bench", details={"n": next(counter)})
        return 1

    def batch_events() -> int:
        with session_scope(engine) as session:
            for _ in range(100):
                record_event(session, action="bench.event", actor="bench", target="t:bench", details={"n": next(counter)})
        return 100

    def bare_commit() -> int:
        with session_scope(engine) as session:
            session.execute(sa.text("UPDATE tlog_head SET size = size WHERE id = 1"))
        return 1

    def event_and_leaf() -> int:
        n = next(counter)
        with session_scope(engine) as session:
            record_event(session, action="bench.issue", actor="bench", target=f"licence:{n}", details={"n": n})
            append_leaf(session, cert_digest=hashlib.sha256(str(n).encode()).digest(), licence_number=f"B-{n}",
                        kind="issued", at=SystemClock().now())
        return 1

    for name, step in (("empty transaction (one UPDATE + commit), reference", bare_commit),
                       ("record_event, one per transaction", one_event),
                       ("record_event, 100 per transaction", batch_events),
                       ("record_event + append_leaf, one issuance per transaction", event_and_leaf)):
        started = time.perf_counter()
        count, lat = _for(seconds, step)
        elapsed = time.perf_counter() - started
        out[name] = {"per_s": rate(count, elapsed), "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}
    return out


def bench_verify(engine: Engine, store: Any, events: int) -> dict[str, Any]:
    """``ecert audit verify`` over a trail of ``events`` events (bulk-written with a valid chain)."""
    from audit.integrity import verify_trail
    from audit.trail import canonical_json, event_hash

    with engine.connect() as connection:
        seq, prev = connection.execute(sa.text("SELECT seq, hash FROM audit_head")).one()
    rows = []
    at = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    started = time.perf_counter()
    for n in range(seq + 1, seq + events + 1):
        details = {"number": f"FOOD-{n:08d}", "type": "FOOD/1"}
        digest = event_hash(seq=n, at=at, action="certificates.licence.issue", actor="bench", target=f"licence:{n}",
                            department="D01", details=details, prev_hash=prev)
        rows.append({"s": n, "at": at, "t": f"licence:{n}", "d": canonical_json(details).decode(), "p": prev, "h": digest})
        prev = digest
    statement = sa.text(
        "INSERT INTO audit_event (seq, at, action, actor, target, department, details, prev_hash, hash) "
        "VALUES (:s, :at, 'certificates.licence.issue', 'bench', :t, 'D01', :d, :p, :h)"
    ).bindparams(sa.bindparam("at", type_=sa.DateTime(timezone=True)))
    with engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            connection.execute(statement, rows[start:start + 10_000])
        connection.execute(sa.text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": seq + events, "h": prev})
    load = time.perf_counter() - started
    take_checkpoint(engine, store, SystemClock())
    started = time.perf_counter()
    with Session(engine) as session:
        report = verify_trail(session, store)
    elapsed = time.perf_counter() - started
    assert report.ok, report.problems
    return {"events": report.events, "load_s": load, "verify_s": elapsed, "verify_events_per_s": rate(report.events, elapsed)}


def bench_issuance(engine: Engine, store: Any, seconds: float) -> dict[str, Any]:
    """Issuance/s through the certificates service, in one run, three ways (interleaved 1 s slices):
    as shipped (its audit event), plus the transparency leaf, and with the audit event switched off
    (``record_event`` replaced by a no-op in ``certificates.issuance`` for those slices only: a
    measuring instrument, never a product path)."""
    import certificates.issuance as issuance_module
    from bench.licences import DEPARTMENT, TYPE, QrKeys, row
    from certificates.blobs import DatabaseBlobStore
    from certificates.issuance import Actor, IssueRequest
    from certificates.service import LicenceService
    from certificates.types import add_type, parse_type_spec

    with session_scope(engine) as session:
        add_type(session, department_code=DEPARTMENT, spec=parse_type_spec(TYPE), actor="bench", now=SystemClock().now())
    service = LicenceService(engine=engine, keystore=store, clock=SystemClock(), blobs=DatabaseBlobStore(),
                             seal_keys=QrKeys(store), sealer=None, public_url="http://127.0.0.1:8000")
    actor, rng = Actor("bench", department=DEPARTMENT), random.Random(11)
    shipped = issuance_module.record_event

    def issue(with_leaf: bool) -> None:
        r = row(rng, rng.randrange(10**6))
        with session_scope(engine) as session:
            issued = service.issue(session, actor, DEPARTMENT, IssueRequest(
                type_code="BL", holder_kind="person", holder_name=r["holder"]["name"],
                holder_id=r["holder"]["id_number"], fields=r["fields"]))
            licence = issued[0] if isinstance(issued, tuple) else issued
            if with_leaf:
                append_leaf(session, cert_digest=bytes.fromhex(licence.fields_digest), licence_number=licence.number,
                            kind="issued", at=licence.issued_at)

    variants = {
        "issuance without audit event (instrument)": (False, lambda *a, **k: None),
        "issuance as shipped (audit event)": (False, shipped),
        "issuance + audit event + transparency leaf": (True, shipped),
    }
    issue(True)  # warm up Vault connections and caches
    counts = {name: [0, 0.0] for name in variants}
    deadline = time.perf_counter() + 3 * seconds
    try:
        while time.perf_counter() < deadline:
            for name, (with_leaf, audit) in variants.items():
                issuance_module.record_event = audit  # type: ignore[assignment]  # the variant under measurement
                t0 = time.perf_counter()
                slice_end = t0 + 1.0
                while time.perf_counter() < slice_end:
                    issue(with_leaf)
                    counts[name][0] += 1
                counts[name][1] += time.perf_counter() - t0
    finally:
        issuance_module.record_event = shipped
    return {name: {"per_s": rate(int(n), t), "count": int(n)} for name, (n, t) in counts.items()}


# -- bulk load of a large tree ------------------------------------------------------------------

def _leaf_rows(start: int, end: int) -> tuple[list[tuple[Any, ...]], list[bytes]]:
    base_ms = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    rows, hashes = [], []
    sha = hashlib.sha256
    for i in range(start, end):
        digest = sha(i.to_bytes(8, "big")).digest()
        number = sha(b"N%d" % i).digest()
        timestamp = base_ms + i
        entry = struct.pack(">BBQ", 1, 1, timestamp) + digest + number
        leaf = sha(b"\x00" + entry).digest()
        rows.append((i, leaf, 1, timestamp, digest, number))
        hashes.append(leaf)
    return rows, hashes


def _complete_levels(level0: list[bytes], first_index: int, base_level: int, max_level: int) -> Iterator[tuple[int, int, bytes]]:
    """(level, index, hash) of every complete subtree above ``level0`` (aligned at ``first_index``)."""
    current, index, level = level0, first_index, base_level
    node = merkle.node_hash
    while len(current) >= 2 and level < max_level:
        current = [node(current[j], current[j + 1]) for j in range(0, len(current) - 1, 2)]
        index >>= 1
        level += 1
        for j, digest in enumerate(current):
            yield level, index + j, digest


def bulk_load(engine: Engine, leaves: int) -> float:
    """Load ``leaves`` synthetic entries and their node cache; return seconds taken."""
    started = time.perf_counter()
    chunk = 1 << CHUNK_LEVEL
    tops: list[bytes] = []
    for start in range(0, leaves, chunk):
        end = min(start + chunk, leaves)
        rows, hashes = _leaf_rows(start, end)
        nodes = [(lv, i, h) for lv, i, h in _complete_levels(hashes, start, 0, CHUNK_LEVEL) if lv >= NODE_MIN_LEVEL]
        if end - start == chunk:
            tops.append(nodes[-1][2])
        _insert(engine, rows, nodes)
    upper = [(lv, i, h) for lv, i, h in _complete_levels(tops, 0, CHUNK_LEVEL, 64)]
    _insert(engine, [], upper)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE tlog_head SET size = :n WHERE id = 1"), {"n": leaves})
    with engine.connect() as connection:  # what autovacuum / a DBA would do after a bulk load
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
    return time.perf_counter() - started


def _insert(engine: Engine, rows: list[tuple[Any, ...]], nodes: list[tuple[int, int, bytes]]) -> None:
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if rows:
                with cursor.copy("COPY tlog_leaf (idx, leaf_hash, kind, timestamp, cert_digest, number_hash) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            if nodes:
                with cursor.copy("COPY tlog_node (level, idx, hash) FROM STDIN") as copy:
                    for node in nodes:
                        copy.write_row(node)
            raw.commit()
        finally:
            raw.close()
        return
    with engine.begin() as connection:
        if rows:
            connection.exec_driver_sql(
                "INSERT INTO tlog_leaf (idx, leaf_hash, kind, timestamp, cert_digest, number_hash) VALUES (?, ?, ?, ?, ?, ?)", rows)
        if nodes:
            connection.exec_driver_sql("INSERT INTO tlog_node (level, idx, hash) VALUES (?, ?, ?)", nodes)


def bench_tree(engine: Engine, store: Any, leaves: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"leaves": leaves, "bulk_load_s": bulk_load(engine, leaves)}
    clock = SystemClock()
    t0 = time.perf_counter()
    head = tlog.sign_tree_head(engine, store, clock)
    out["first STH (root over the cache + key create + sign) ms"] = (time.perf_counter() - t0) * 1000
    assert head is not None and head.tree_size == leaves
    with Session(engine) as session:
        _, sample = _leaf_rows(leaves // 3, leaves // 3 + 1)
        assert tlog.inclusion_proof(session, leaf_index=leaves // 3).leaf_hash == sample[0]
    # STH signing: new leaves arrive, a head is signed (root from the cache + one Vault signature).
    n = iter(range(10**9))

    def grow_and_sign() -> int:
        with session_scope(engine) as session:
            i = next(n)
            append_leaf(session, cert_digest=hashlib.sha256(b"x%d" % i).digest(), licence_number=f"S-{i}", kind="issued",
                        at=clock.now())
        t = time.perf_counter()
        assert tlog.sign_tree_head(engine, store, clock) is not None
        sign_times.append(time.perf_counter() - t)
        return 1

    sign_times: list[float] = []
    _for(min(seconds, 3.0), grow_and_sign)
    out["sign_tree_head"] = {"per_s": rate(len(sign_times), sum(sign_times)), "p50_ms": percentile(sign_times, 50) * 1000}
    rng = random.Random(7)
    with Session(engine) as session:
        head = tlog.latest_tree_head(session)
        if head is None:
            raise RuntimeError("no signed tree head to prove against")
        size, root = head.tree_size, head.root_hash
        proofs: list[tlog.InclusionProof] = []

        def by_index() -> int:
            proofs.append(tlog.inclusion_proof(session, leaf_index=rng.randrange(size)))
            return 1

        started = time.perf_counter()
        count, lat = _for(seconds, by_index)
        out["inclusion proof by leaf index"] = {"per_s": rate(count, time.perf_counter() - started),
                                                "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}
        hashes = [p.leaf_hash for p in proofs[:2000]]

        def by_hash() -> int:
            tlog.inclusion_proof(session, leaf_hash=rng.choice(hashes))
            return 1

        started = time.perf_counter()
        count, lat = _for(seconds, by_hash)
        out["inclusion proof by leaf hash"] = {"per_s": rate(count, time.perf_counter() - started),
                                               "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}

        def consistency() -> int:
            first = rng.randrange(1, size)
            tlog.consistency_proof(session, first=first, second=size)
            return 1

        started = time.perf_counter()
        count, _ = _for(seconds / 2, consistency)
        out["consistency proof to the latest head"] = {"per_s": rate(count, time.perf_counter() - started)}
    started = time.perf_counter()
    for p in proofs[:5000]:
        merkle.verify_inclusion(p.leaf_index, p.tree_size, p.leaf_hash, list(p.path), root)
    out["inclusion proof verification (audit.merkle, offline)"] = {
        "per_s": rate(min(len(proofs), 5000), time.perf_counter() - started)}
    out["path_length"] = len(proofs[0].path)
    with engine.connect() as connection:
        out["node_rows"] = connection.execute(sa.text("SELECT COUNT(*) FROM tlog_node")).scalar_one()
    return out


# -- statistics: dashboard queries over counters equivalent to 10 million certificates ----------

def bench_stats(engine: Engine, certificates: int, seconds: float) -> dict[str, Any]:
    """40 departments x 10 licence types x 3 years of daily counters; the issue counts sum to ``certificates``."""
    from audit.stats import daily_counts, summary, totals

    departments, types, days = 40, 10, 3 * 365
    first = dt.date(2024, 1, 1)
    per_row, extra = divmod(certificates, departments * types * days)
    rng = random.Random(3)
    rows: list[tuple[Any, ...]] = []
    for d in range(departments):
        for day in range(days):
            date = first + dt.timedelta(days=day)
            for t in range(types):
                issued = per_row + (1 if (d * types + t) * days + day < extra else 0)
                rows.append((f"D{d:02d}", date, "certificates.licence.issue", f"T{t}/1", issued))
                if rng.random() < 0.2:
                    rows.append((f"D{d:02d}", date, "certificates.licence.revoke", f"T{t}/1", 1))
            for channel in ("link", "upload", "bundle"):
                rows.append((f"D{d:02d}", date, f"verify.{channel}", "", rng.randrange(50, 500)))
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO stats_daily (department, day, metric, dimension, count) "
                                   "VALUES (:a, :b, :c, :d, :e)").bindparams(sa.bindparam("b", type_=sa.Date)),
                           [dict(zip("abcde", r)) for r in rows])
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
    out: dict[str, Any] = {"counter_rows": len(rows), "load_s": time.perf_counter() - started}
    with Session(engine) as session:
        total = sum(v for (m, _), v in totals(daily_counts(session, start=first, end=first + dt.timedelta(days=days),
                                                            departments=[f"D{d:02d}" for d in range(departments)]))
                    .items() if m == "certificates.licence.issue")
        assert total == certificates, total
        end = first + dt.timedelta(days=days - 1)
        for name, query in (
            ("one department, 90 days, all metrics", lambda: daily_counts(
                session, start=end - dt.timedelta(days=89), end=end, departments=["D07"])),
            ("one department, 3 years, issuance only", lambda: daily_counts(
                session, start=first, end=end, departments=["D07"], metric_prefix="certificates.licence.issue")),
            ("all departments (platform admin), 30 days, every row", lambda: daily_counts(
                session, start=end - dt.timedelta(days=29), end=end)),
            ("all departments, 30 days, summed per department in SQL", lambda: summary(
                session, start=end - dt.timedelta(days=29), end=end, by="department")),
            ("all departments, 1 year, issuance summed per day in SQL", lambda: summary(
                session, start=end - dt.timedelta(days=364), end=end, by="day", metric_prefix="certificates.licence.issue")),
        ):
            count, lat = _for(seconds / 3, lambda: (query(), 1)[1])  # noqa: B023 - called within this iteration
            out[name] = {"rows": len(query()), "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--postgres", default=os.environ.get("ECERT_BENCH_POSTGRES_URL",
                                                            "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with throwaway_openbao() as (_server, store):
        for backend in args.backends.split(","):
            with fresh_engine(backend, args.postgres) as engine:
                appends = bench_appends(engine, args.seconds)
                t0 = time.perf_counter()
                checkpoint = take_checkpoint(engine, store, SystemClock())
                assert checkpoint is not None
                appends["take_checkpoint (one Vault signature) ms"] = (time.perf_counter() - t0) * 1000
                appends["audit verify"] = bench_verify(engine, store, 200_000)
                appends["issuance"] = bench_issuance(engine, store, args.seconds)
                results[f"{backend}: appends"] = appends
            with fresh_engine(backend, args.postgres) as engine:
                results[f"{backend}: tree"] = bench_tree(engine, store, args.leaves, args.seconds)
            with fresh_engine(backend, args.postgres) as engine:
                results[f"{backend}: statistics"] = bench_stats(engine, 10_000_000, args.seconds)
            print(backend, results[f"{backend}: appends"], results[f"{backend}: tree"],
                  results[f"{backend}: statistics"], flush=True)
    results["peak_rss_mib"] = peak_rss_mib()
    name = "audit" if args.leaves == 1_000_000 else f"audit-{args.leaves}-{args.backends.replace(',', '-')}"
    path = write_results(name, {"args": vars(args), "results": results})
    print(f"results written to {Path(path)}")


if __name__ == "__main__":
    main()

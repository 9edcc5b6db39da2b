"""Scale data: fill PostgreSQL with licences, identities and their transparency leaves, and show lookups stay flat.

Run: ``.venv/bin/python -m bench.scale [--steps 10000 100000 1000000 10000000] [--identities-ratio 1.6]
[--schema NAME --keep] [--lookups 2000]``

The schema (``--schema``, or a throwaway one) on the PostgreSQL server ``--postgres-url`` names is migrated like the
service's; a real department (``SCALE``) and licence type (``BL``) are created through the service's own code
(``ca.departments.add_department``, ``certificates.types.add_type``, audited). The schema then grows step by step to
each size in ``--steps``: licences of that department and type, and ``--identities-ratio`` times as many person
accounts, generated inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``; every key is a SHA-256 of the row
number that :func:`token_of` and friends recompute in Python) with the secondary indexes and unique constraints
dropped during the load and recreated after it, in parallel per table. After the last step every licence gets its
issuance leaf in the transparency log (``tlog_leaf``, exactly the leaf ``append_leaf`` writes for an unsealed
licence) and the level >= 4 node cache, computed level by level in SQL, so a signed tree head gives each synthetic
licence a real inclusion proof. At every size the same lookups run through the service's own query code where it
exists (token: ``certificates.records.get_by_token``), timed one by one on random keys; results go to
``bench/results/scale.json``.

A named schema is kept with ``--keep`` and labelled with what it holds (``COMMENT ON SCHEMA``); a later run asking for
the same size reuses it without loading (``bench.verification --fill`` does this through :func:`ensure`). Ciphertexts
and password hashes are placeholders, never Vault output: the point is the indexes and the read path, not the content.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.common import percentile, write_results
from certificates.models import Licence
from certificates.records import get_by_token
from ecert.db import make_engine, migrate, session_scope
from identity.models import Account

__all__ = ["DEPARTMENT", "token_of", "number_of", "fill", "log_leaves", "ensure", "schema_url", "measure", "main"]

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEPARTMENT = "SCALE"
_AT = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
_UNTIL = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)
_CHUNK = 1_000_000  # rows per INSERT statement (each commits: progress survives an interruption)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Python twins of the SQL expressions below: the same keys, so lookups and wrk scripts can name any row.
def token_of(i: int) -> str:
    return _sha(f"scale-token:{i}")[:32]


def number_of(i: int) -> str:
    return f"SCALE-BL-{i:012d}"


def holder_index_of(i: int) -> str:
    """The holder's blind index of licence ``i``: two licences per holder."""
    return _sha(f"scale-holder:{i // 2}")


def person_index_of(i: int) -> str:
    return _sha(f"scale-person:{i}")


_SHA = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"
_LICENCES = sa.text(f"""
INSERT INTO licence (id, number, token, type_code, type_version, department_code, holder_kind, holder_name,
    holder_id_cipher, holder_index, fields, fields_digest, status, valid_from, valid_until, issued_at, issued_by,
    updated_at, log_index)
SELECT 'sc' || lpad(i::text, 30, '0'), 'SCALE-BL-' || lpad(i::text, 12, '0'),
    left({_SHA.format("'scale-token:' || i")}, 32), 'BL', :version, :department, 'enterprise',
    '规模测试' || i || '有限公司', 'vault:v1:placeholder', {_SHA.format("'scale-holder:' || (i / 2)")},
    json_build_object('company', '规模测试' || i || '有限公司', 'capital', i),
    {_SHA.format("'scale-digest:' || i")}, 'valid', :at, :until, :at, 'system:scale', :at, i
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint) - 1) AS i""")
_ACCOUNTS = sa.text(f"""
INSERT INTO identity_account (id, kind, name, id_cipher, id_index, password_hash, totp_last_step, assurance, created_at)
SELECT 'ac' || lpad(i::text, 30, '0'), 'person', '规模测试', 'vault:v1:placeholder',
    {_SHA.format("'scale-person:' || i")}, 'argon2id$placeholder', 0, 'self', :at
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint) - 1) AS i""")
# The issuance leaf of licence i (audit.treehead.LeafEntry: version 1, kind ISSUED, issued_at in ms, the licence's
# fields digest as it has no PDF, SHA-256 of its number), at log index i.
_LEAVES = sa.text("""
INSERT INTO tlog_leaf (idx, leaf_hash, kind, timestamp, cert_digest, number_hash)
SELECT i, sha256(decode('000101', 'hex') || int8send(CAST(:ms AS bigint)) || d || n), 1, :ms, d, n
FROM (SELECT i, sha256(convert_to('scale-digest:' || i, 'UTF8')) AS d,
             sha256(convert_to('SCALE-BL-' || lpad(i::text, 12, '0'), 'UTF8')) AS n
      FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint) - 1) AS i) AS s""")


def schema_url(postgres_url: str, schema: str) -> str:
    return f"{postgres_url}{'&' if '?' in postgres_url else '?'}options={quote(f'-csearch_path={schema}')}"


def _driver(engine: sa.Engine) -> Any:
    """A psycopg connection of its own, in autocommit (each statement commits)."""
    raw = engine.raw_connection()
    connection: Any = raw.driver_connection  # psycopg's Connection; SQLAlchemy types it Any | None
    raw.detach()
    connection.autocommit = True
    connection.execute("SET maintenance_work_mem = '512MB'")
    connection.execute("SET work_mem = '256MB'")
    return connection


def _secondary(connection: Any, table: str) -> list[tuple[str, str]]:
    """(drop, create) statements for every index and unique constraint of ``table`` except its primary key."""
    constraints = connection.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        (table,)).fetchall()
    statements = [(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"', f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
                  for name, definition in constraints]
    named = {name for name, _ in constraints}
    indexes = connection.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p')",
        (table, table)).fetchall()
    return statements + [(f'DROP INDEX "{name}"', definition) for name, definition in indexes if name not in named]


def _parallel(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _prepare(engine: sa.Engine) -> int:
    """The department and licence type the synthetic rows belong to, made by the service's code; the type version."""
    from ca.departments import add_department
    from ca.models import Department
    from certificates.models import LicenceType
    from certificates.types import add_type, parse_type_spec
    from tests.support.licences import BUSINESS_TYPE

    with session_scope(engine) as session:
        if session.get(Department, DEPARTMENT) is None:
            add_department(session, DEPARTMENT, "规模测试局", name_en="Scale test bureau", actor="bench", now=_AT)
        version = session.exec(select(LicenceType.version).where(LicenceType.department_code == DEPARTMENT,
                                                                 LicenceType.code == "BL")).first()
        if version is None:
            version = add_type(session, department_code=DEPARTMENT, spec=parse_type_spec(BUSINESS_TYPE),
                               actor="bench", now=_AT).version
    return int(version)


def fill(engine: sa.Engine, *, start: int, stop: int, people: tuple[int, int]) -> dict[str, float]:
    """Licences ``start..stop`` and person accounts ``people[0]..people[1]``, indexes dropped during the load and
    rebuilt after it (one connection per table, in parallel); seconds per phase."""
    version = _prepare(engine)
    tables = {"licence": (_LICENCES, start, stop), "identity_account": (_ACCOUNTS, *people)}
    timings: dict[str, float] = {}
    connections = {table: _driver(engine) for table in tables}
    try:
        rebuild = {table: _secondary(connections[table], table) for table in tables}
        t0 = time.perf_counter()
        for table, statements in rebuild.items():
            for drop, _ in statements:
                connections[table].execute(drop)

        def load(table: str) -> Callable[[], None]:
            statement, first, last = tables[table]

            def run() -> None:
                sql = str(statement.compile(dialect=engine.dialect))
                for a in range(first, last, _CHUNK):
                    connections[table].execute(sql, {"version": version, "department": DEPARTMENT, "at": _AT,
                                                     "until": _UNTIL, "start": a, "stop": min(last, a + _CHUNK)})
            return run

        def build(table: str) -> Callable[[], None]:
            def run() -> None:
                for _, create in rebuild[table]:
                    connections[table].execute(create)
                connections[table].execute(f"ANALYZE {table}")
            return run

        _parallel([load(table) for table in tables])
        timings["insert_seconds"] = round(time.perf_counter() - t0, 1)
        t1 = time.perf_counter()
        _parallel([build(table) for table in tables])
        timings["index_seconds"] = round(time.perf_counter() - t1, 1)
        timings["indexes_rebuilt"] = sum(len(s) for s in rebuild.values())
    finally:
        for connection in connections.values():
            connection.close()
    return timings


def log_leaves(engine: sa.Engine, size: int) -> float:
    """The issuance leaf of licences ``0..size`` at log indexes ``0..size`` and the node cache ``append_leaf`` keeps
    (complete subtrees of level >= 4), on an empty log; seconds taken."""
    from audit.tlog import NODE_MIN_LEVEL

    t0 = time.perf_counter()
    connection = _driver(engine)
    try:
        if connection.execute("SELECT size FROM tlog_head WHERE id = 1").fetchone()[0] != 0:
            raise RuntimeError("the transparency log is not empty: synthetic leaves would not line up with licences")
        sql = str(_LEAVES.compile(dialect=engine.dialect))
        for a in range(0, size, _CHUNK):
            connection.execute(sql, {"ms": int(_AT.timestamp() * 1000), "start": a, "stop": min(size, a + _CHUNK)})
        source, rows, level = "tlog_leaf", size, 0
        hash_of = "leaf_hash"
        while rows >= 2:  # the next level: each complete pair of the level below
            level += 1
            connection.execute(f"DROP TABLE IF EXISTS lv{level}")
            connection.execute(
                f"CREATE TEMP TABLE lv{level} AS SELECT idx / 2 AS idx, sha256(decode('01', 'hex') || h || nxt) AS hash "
                f"FROM (SELECT idx, {hash_of} AS h, lead({hash_of}) OVER (ORDER BY idx) AS nxt FROM {source}) AS s "
                "WHERE idx % 2 = 0 AND nxt IS NOT NULL ORDER BY 1")
            if level >= NODE_MIN_LEVEL:
                connection.execute(f"INSERT INTO tlog_node (level, idx, hash) SELECT {level}, idx, hash FROM lv{level}")
            if source != "tlog_leaf":
                connection.execute(f"DROP TABLE {source}")
            source, rows, hash_of = f"lv{level}", rows // 2, "hash"
        connection.execute("UPDATE tlog_head SET size = %s WHERE id = 1", (size,))
        connection.execute("ANALYZE tlog_leaf")
        connection.execute("ANALYZE tlog_node")
    finally:
        connection.close()
    return time.perf_counter() - t0


def check_log(engine: sa.Engine, size: int) -> None:
    """The cached root equals the reference MTH over all leaves (small logs only) and licence 0's leaf is the one
    ``verify.link`` looks up."""
    from audit import merkle, tlog
    from certificates.issuance import transparency_digest
    from audit.treehead import LeafEntry, LeafKind, number_hash

    with Session(engine) as session:
        licence = get_by_token(session, token_of(size - 1))
        assert licence is not None
        entry = LeafEntry(LeafKind.ISSUED, int(licence.issued_at.timestamp() * 1000), transparency_digest(licence),
                          number_hash(licence.number))
        found = session.execute(sa.text("SELECT idx FROM tlog_leaf WHERE leaf_hash = :h"), {"h": entry.leaf_hash}).scalar()
        assert found == size - 1, "synthetic leaf does not match the licence"
        if size <= 200_000:
            leaves = session.execute(sa.text("SELECT leaf_hash FROM tlog_leaf ORDER BY idx")).scalars().all()
            assert tlog.root_hash(session, size) == merkle.mth(list(leaves)), "node cache disagrees with the leaves"


def _label(engine: sa.Engine, schema: str) -> dict[str, Any]:
    with engine.connect() as connection:
        comment = connection.execute(sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                             "WHERE nspname = :s"), {"s": schema}).scalar()
    try:
        return json.loads(comment or "{}")
    except ValueError:
        return {}


def _set_label(engine: sa.Engine, schema: str, label: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(f"COMMENT ON SCHEMA \"{schema}\" IS '{json.dumps(label)}'"))


FORMAT = 2  # 2: licences carry their log index


def ensure(postgres_url: str, schema: str, *, licences: int, identities: int) -> dict[str, Any]:
    """The schema filled to ``licences`` (with leaves) and ``identities``: reused if it already is, else filled now.
    Returns its label (sizes, load seconds, whether this call loaded it)."""
    admin = sa.create_engine(postgres_url)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        label = _label(admin, schema)
        if (label.get("complete") and label.get("licences") == licences and label.get("identities") == identities
                and label.get("format") == FORMAT):
            return {**label, "reused": True}
        if label:
            raise RuntimeError(f"schema {schema} holds {label}, not {licences} licences of fill format {FORMAT}: "
                               "drop it or use another name")
        engine = make_engine(schema_url(postgres_url, schema))
        try:
            migrate(engine)
            t0 = time.perf_counter()
            timings = fill(engine, start=0, stop=licences, people=(0, identities))
            leaves = log_leaves(engine, licences)
            check_log(engine, licences)
            label = {"format": FORMAT, "licences": licences, "identities": identities, "department": DEPARTMENT, "type": "BL",
                     "leaves": licences, **timings, "leaves_seconds": round(leaves, 1),
                     "load_seconds": round(time.perf_counter() - t0, 1), "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "load_average_during_load": os.getloadavg(), "complete": True}
            _set_label(admin, schema, label)
        finally:
            engine.dispose()
        return {**label, "reused": False}
    finally:
        admin.dispose()


def _timed(lookups: int, one: Any) -> dict[str, float]:
    latencies = []
    for _ in range(lookups):
        t0 = time.perf_counter()
        one()
        latencies.append(time.perf_counter() - t0)
    total = sum(latencies)
    return {"per_s": round(lookups / total, 1), "p50_ms": round(percentile(latencies, 50) * 1000, 3),
            "p99_ms": round(percentile(latencies, 99) * 1000, 3)}


def measure(engine: sa.Engine, size: int, people: int, lookups: int, rng: random.Random) -> dict[str, Any]:
    """The same lookups at ``size`` licences (``people`` accounts), each on a random existing (or missing) key."""
    with Session(engine) as session:
        def by_token() -> None:
            assert get_by_token(session, token_of(rng.randrange(size))) is not None

        def missing() -> None:
            assert get_by_token(session, uuid.uuid4().hex) is None

        def by_number() -> None:
            assert session.exec(select(Licence).where(Licence.number == number_of(rng.randrange(size)))).first()

        def by_holder() -> None:
            assert session.exec(select(Licence).where(Licence.holder_index == holder_index_of(rng.randrange(size)),
                                                      Licence.holder_kind == "enterprise").limit(100)).all()

        def account() -> None:
            assert session.exec(select(Account).where(Account.kind == "person",
                                                      Account.id_index == person_index_of(rng.randrange(people)))).first()

        result: dict[str, Any] = {name: _timed(lookups, function) for name, function in (
            ("licence by verification token (get_by_token)", by_token), ("missing token", missing),
            ("licence by number", by_number), ("holder's licences by blind index", by_holder),
            ("account by ID index (login)", account))}
        plan = session.connection().execute(sa.text("EXPLAIN SELECT * FROM licence WHERE token = :t"),
                                            {"t": token_of(0)}).scalars().all()
        result["plan, token lookup"] = " / ".join(line.strip() for line in plan)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("ECERT_TEST_POSTGRES_URL", POSTGRES_URL))
    parser.add_argument("--steps", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--identities-ratio", type=float, default=1.0, help="person accounts per licence (issue: 1.6)")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--schema", help="a named schema: reused when it already holds the largest step")
    parser.add_argument("--keep", action="store_true", help="keep the schema for later runs (bench.verification --fill)")
    args = parser.parse_args()
    schema = args.schema or f"bench_scale_{uuid.uuid4().hex[:8]}"
    steps = sorted(args.steps)
    people = [int(size * args.identities_ratio) for size in steps]
    admin = sa.create_engine(args.postgres_url)
    results: dict[str, Any] = {"schema": schema, "load_average_at_start": os.getloadavg(), "sizes": {}}
    engine = make_engine(schema_url(args.postgres_url, schema))
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        label = _label(admin, schema)
        reuse = label.get("complete") and label.get("licences") == steps[-1] and label.get("identities") == people[-1]
        if label and not reuse:
            raise SystemExit(f"schema {schema} holds {label}: drop it or name another")
        if reuse:
            steps, people = steps[-1:], people[-1:]
            results["reused"] = label
        else:
            migrate(engine)
        done, done_people, rng = 0, 0, random.Random(1)
        for size, persons in zip(steps, people):
            entry: dict[str, Any] = {"licences": size, "identities": persons}
            if not reuse:
                t0 = time.perf_counter()
                entry.update(fill(engine, start=done, stop=size, people=(done_people, persons)))
                seconds = time.perf_counter() - t0
                entry.update(load_seconds=round(seconds, 1),
                             rows_per_s_loaded=round((size - done + persons - done_people) / seconds))
            done, done_people = size, persons
            entry.update(measure(engine, size, persons, args.lookups, rng))
            results["sizes"][str(size)] = entry
            print(size, entry, flush=True)
            write_results("scale", results)
        if not reuse:
            leaves = log_leaves(engine, steps[-1])
            check_log(engine, steps[-1])
            results["leaves_seconds"] = round(leaves, 1)
            label = {"licences": steps[-1], "identities": people[-1], "department": DEPARTMENT, "type": "BL",
                     "leaves": steps[-1], "load_seconds": round(sum(e.get("load_seconds", 0) for e in results["sizes"].values()) + leaves, 1),
                     "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "complete": True}
            _set_label(admin, schema, label)
    finally:
        engine.dispose()
        if not args.keep:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    results["load_average_at_end"] = os.getloadavg()
    print(f"results: {write_results('scale', results)}")


if __name__ == "__main__":
    main()

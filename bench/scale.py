"""Scale data: fill PostgreSQL with identities and licences by COPY, and show lookups do not slow down.

Run: ``.venv/bin/python -m bench.scale [--steps 10000 100000 1000000 10000000] [--lookups 2000]``

A throwaway schema on the PostgreSQL server ``--postgres-url`` names (migrated like the service's), grown step by step to
each size in ``--steps`` (licences and as many identities, written with ``COPY ... FROM STDIN`` through psycopg). At
every size the same lookups run, through the service's own query code where it exists: a licence by verification
token (``certificates.records.get_by_token``, the link/QR verification path) hit and miss, by licence number, a
holder's licences by blind index, and an account by ID index (login). Each lookup is timed one by one on random keys;
results (p50/p99 and rate per lookup kind and size, load time, EXPLAIN of the token lookup) go to
``bench/results/scale.json``. Rows are synthetic (ciphertexts are placeholders), never real Vault output: the point is
the indexes, not the content.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import time
import uuid
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.common import percentile, write_results
from certificates.models import Licence
from certificates.records import get_by_token
from ecert.db import make_engine, migrate
from identity.models import Account

__all__ = ["fill", "measure", "main"]

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_AT = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
_FIELDS = '{"company": "规模测试有限公司", "legal_representative": "王五", "capital": 1000000}'


def token_of(i: int) -> str:
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=16, person=b"scale-token").hexdigest()


def index_of(i: int) -> str:
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=32, person=b"scale-holder").hexdigest()


def number_of(i: int) -> str:
    return f"SCALE-BL-{i:012d}"


def _licence_rows(start: int, stop: int) -> Any:
    for i in range(start, stop):
        yield (f"sc{i:030d}", number_of(i), token_of(i), "BL", 1, "SCALE", "enterprise", "规模测试有限公司",
               "vault:v1:placeholder", index_of(i // 2), _FIELDS, "0" * 64, "valid", _AT, _AT,
               "system:scale", _AT)


def _account_rows(start: int, stop: int) -> Any:
    for i in range(start, stop):
        yield (f"ac{i:030d}", "person", "规模测试", "vault:v1:placeholder", index_of(i), "argon2id$placeholder", 0,
               "self", _AT)


_LICENCE_COLUMNS = ("id, number, token, type_code, type_version, department_code, holder_kind, holder_name, "
                    "holder_id_cipher, holder_index, fields, fields_digest, status, valid_from, issued_at, issued_by, "
                    "updated_at")
_ACCOUNT_COLUMNS = "id, kind, name, id_cipher, id_index, password_hash, totp_last_step, assurance, created_at"


def fill(engine: sa.Engine, *, start: int, stop: int) -> float:
    """COPY licences and identities ``start..stop`` into the (migrated) database; seconds taken."""
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY licence ({_LICENCE_COLUMNS}) FROM STDIN") as copy:
                for row in _licence_rows(start, stop):
                    copy.write_row(row)
            with cursor.copy(f"COPY identity_account ({_ACCOUNT_COLUMNS}) FROM STDIN") as copy:
                for row in _account_rows(start, stop):
                    copy.write_row(row)
        connection.commit()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE licence")
            cursor.execute("ANALYZE identity_account")
        connection.commit()
    finally:
        raw.close()
    return time.perf_counter() - t0


def _timed(lookups: int, one: Any) -> dict[str, float]:
    latencies = []
    for _ in range(lookups):
        t0 = time.perf_counter()
        one()
        latencies.append(time.perf_counter() - t0)
    total = sum(latencies)
    return {"per_s": round(lookups / total, 1), "p50_ms": round(percentile(latencies, 50) * 1000, 3),
            "p99_ms": round(percentile(latencies, 99) * 1000, 3)}


def measure(engine: sa.Engine, size: int, lookups: int, rng: random.Random) -> dict[str, Any]:
    """The same lookups at ``size`` rows, each on a random existing (or missing) key."""
    with Session(engine) as session:
        def by_token() -> None:
            assert get_by_token(session, token_of(rng.randrange(size))) is not None

        def missing() -> None:
            assert get_by_token(session, uuid.uuid4().hex) is None

        def by_number() -> None:
            assert session.exec(select(Licence).where(Licence.number == number_of(rng.randrange(size)))).first()

        def by_holder() -> None:
            session.exec(select(Licence).where(Licence.holder_index == index_of(rng.randrange(size // 2)),
                                               Licence.holder_kind == "enterprise").limit(100)).all()

        def account() -> None:
            assert session.exec(select(Account).where(Account.kind == "person",
                                                      Account.id_index == index_of(rng.randrange(size)))).first()

        result = {name: _timed(lookups, function) for name, function in (
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
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the schema (printed) for later runs")
    args = parser.parse_args()
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.postgres_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.postgres_url}{'&' if '?' in args.postgres_url else '?'}options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(url)
    results: dict[str, Any] = {"schema": schema, "load_average_at_start": os.getloadavg(), "sizes": {}}
    try:
        migrate(engine)
        done, rng = 0, random.Random(1)
        for size in sorted(args.steps):
            seconds = fill(engine, start=done, stop=size)
            rows = size - done
            done = size
            entry = {"load_seconds": round(seconds, 1), "rows_per_s_loaded": round(2 * rows / seconds),
                     **measure(engine, size, args.lookups, rng)}
            results["sizes"][str(size)] = entry
            print(size, entry, flush=True)
            write_results("scale", results)
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

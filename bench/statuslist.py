"""Status lists at provincial scale: size and build time for 10 million licences; offline lookup cost.

Run: ``.venv/bin/python -m bench.statuslist [--licences 10000000] [--database URL]``

Two measurements: (1) packing and compressing every list for ``--licences`` licences in memory (the
CPU part of a full rebuild; 77 lists at 10M), with a realistic mix of states; (2) one full list
(131,072 licences) rebuilt from the database and signed in Vault, as the service does it. Then the
offline side: verifying a downloaded list's signature and inflating it, and one entry lookup.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import peak_rss_mib, throwaway_openbao, write_results
from certificates import statuslist
from certificates.lifecycle import Status
from ecert.db import make_engine, migrate, session_scope

# share of licences per state at any time (most are valid; a few percent changed)
MIX = [(Status.VALID, 0.90), (Status.EXPIRED, 0.04), (Status.SUPERSEDED, 0.03), (Status.CANCELLED, 0.015),
       (Status.REVOKED, 0.007), (Status.SUSPENDED, 0.005), (Status.WITHDRAWN, 0.002), (Status.TRANSFERRED, 0.001)]


def _codes(rng: random.Random, n: int) -> list[int]:
    states, weights = zip(*MIX)
    return [statuslist.CODES[s] for s in rng.choices(states, weights, k=n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--licences", type=int, default=10_000_000)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    rng = random.Random(7)
    results: dict[str, object] = {"licences": args.licences, "list_size": statuslist.LIST_SIZE, "bits": statuslist.BITS}

    lists = -(-args.licences // statuslist.LIST_SIZE)
    key = secrets.token_bytes(16)
    t0 = time.perf_counter()
    for k in range(statuslist.LIST_SIZE):
        statuslist.permute(key, k)
    permute_us = (time.perf_counter() - t0) / statuslist.LIST_SIZE * 1e6
    started = time.perf_counter()
    compressed = 0
    for n in range(lists):
        count = min(statuslist.LIST_SIZE, args.licences - n * statuslist.LIST_SIZE)
        indexes = rng.sample(range(statuslist.LIST_SIZE), count)  # any permutation packs alike
        compressed += len(statuslist.encode(statuslist.pack(zip(indexes, _codes(rng, count)))))
    total = time.perf_counter() - started
    results["lists"] = lists
    results["pack+compress all lists s (in memory, incl. drawing the states)"] = round(total, 1)
    results["index assignment per licence us (keyed permutation, at issuance)"] = round(permute_us, 1)
    results["all lists compressed MiB"] = round(compressed / 2**20, 2)
    results["one list compressed KiB"] = round(compressed / lists / 1024, 1)
    results["one list raw KiB"] = statuslist.LIST_SIZE * statuslist.BITS // 8 // 1024

    with throwaway_openbao() as (_server, store), tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database or f"sqlite:///{Path(scratch) / 'bench.db'}")
        migrate(engine)
        results["database"] = engine.dialect.name
        now = dt.datetime.now(dt.timezone.utc)
        with session_scope(engine) as session:
            slots = statuslist.assign_indexes(session, statuslist.LIST_SIZE, now)
        insert = sa.text(
            "INSERT INTO licence (id, number, token, type_code, type_version, department_code, holder_kind, holder_name,"
            " holder_id_cipher, holder_index, fields, fields_digest, status, valid_from, issued_at, issued_by, updated_at,"
            " status_list, status_index) VALUES (:id, :id, :id, 'BL', 1, 'BENCH', 'person', 'x', 'x', 'x', '{}', 'x',"
            " :status, :now, :now, 'bench', :now, :list, :idx)"
        )
        codes = _codes(rng, len(slots))
        names = {code: status.value for status, code in statuslist.CODES.items()}
        for start in range(0, len(slots), 20_000):
            rows = [{"id": secrets.token_hex(12), "status": names[codes[i]], "now": now, "list": slots[i][0], "idx": slots[i][1]}
                    for i in range(start, min(start + 20_000, len(slots)))]
            with engine.begin() as connection:
                connection.execute(insert, rows)
        with session_scope(engine) as session:
            t0 = time.perf_counter()
            token = statuslist.current_token(session, store, slots[0][0], public_url="http://bench", now=now)
            results["one full list rebuilt from the database and signed s"] = round(time.perf_counter() - t0, 2)
        results["one list token bytes"] = len(token.token)
        public = store.key_info(statuslist.KEY_NAME).public_key()

        t0 = time.perf_counter()
        for _ in range(100):
            _, data = statuslist.read_token(token.token, public)
        results["offline: verify + inflate one list ms"] = round((time.perf_counter() - t0) * 10, 2)
        t0 = time.perf_counter()
        for i in range(100_000):
            statuslist.entry(data, slots[i % len(slots)][1])
        results["offline: one lookup us"] = round((time.perf_counter() - t0) * 10, 3)
        assert statuslist.entry(data, slots[0][1]) == codes[0]
        engine.dispose()
    results["peak RSS MiB"] = round(peak_rss_mib(), 1)
    path = write_results("statuslist", results)
    for name, value in results.items():
        print(f"{name}: {value}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()

"""Signatures/s through the KeyStore (Vault transit), single and batch, next to local ECDSA.

Run: ``.venv/bin/python -m bench.keystore [--seconds 10]``
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bench.common import peak_rss_mib, percentile, rate, throwaway_openbao, write_results
from keys import KeyType


def _for(seconds: float, step: Callable[[], int]) -> tuple[int, list[float]]:
    count, latencies, deadline = 0, [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        count += step()
        latencies.append(time.perf_counter() - t0)
    return count, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    digest = hashlib.sha256(b"bench").digest()
    results: dict[str, dict[str, float]] = {}

    local = ec.generate_private_key(ec.SECP256R1())  # measurement reference only; never an ecert key
    started = time.perf_counter()
    count, _ = _for(args.seconds, lambda: (local.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))), 1)[1])
    results["cryptography local P-256, 1 thread"] = {"per_s": rate(count, time.perf_counter() - started)}

    with throwaway_openbao() as (_server, store):
        key = store.create("bench-p256", KeyType.EC_P256).latest
        store.sign(key, digest)  # warm up the connection and login
        started = time.perf_counter()
        count, lat = _for(args.seconds, lambda: (store.sign(key, digest), 1)[1])
        results["KeyStore.sign, 1 thread"] = {
            "per_s": rate(count, time.perf_counter() - started),
            "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
        }
        for threads in (4, 16):
            with ThreadPoolExecutor(threads) as pool:
                started = time.perf_counter()
                counts = list(pool.map(lambda _: _for(args.seconds, lambda: (store.sign(key, digest), 1)[1])[0], range(threads)))
            results[f"KeyStore.sign, {threads} threads"] = {"per_s": rate(sum(counts), time.perf_counter() - started)}
        batch = [hashlib.sha256(str(i).encode()).digest() for i in range(256)]
        started = time.perf_counter()
        count, lat = _for(args.seconds, lambda: len(store.sign_batch(key, batch)))
        results["KeyStore.sign_batch (256/request), 1 thread"] = {
            "per_s": rate(count, time.perf_counter() - started),
            "p50_ms_per_batch": percentile(lat, 50) * 1000,
        }
        with ThreadPoolExecutor(4) as pool:
            started = time.perf_counter()
            counts = list(pool.map(lambda _: _for(args.seconds, lambda: len(store.sign_batch(key, batch)))[0], range(4)))
        results["KeyStore.sign_batch (256/request), 4 threads"] = {"per_s": rate(sum(counts), time.perf_counter() - started)}

    path = write_results("keystore", {"seconds": args.seconds, "results": results, "peak_rss_mib": peak_rss_mib()})
    print("| measurement | signatures/s | notes |\n|---|---:|---|")
    for name, values in results.items():
        notes = ", ".join(f"{k} {v:.1f}" for k, v in values.items() if k != "per_s")
        print(f"| {name} | {values['per_s']:,.0f} | {notes} |")
    print(f"results: {path}")


if __name__ == "__main__":
    main()

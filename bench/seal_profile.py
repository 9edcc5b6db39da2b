"""Document checks of distinct sealed PDFs: the seal-profile path vs pyHanko, in process, one thread; CLI start-up.

Command: ``.venv/bin/python -m bench.seal_profile --bundle b.json licence1.pdf licence2.pdf ... [--rounds 20]``
(a trust bundle from ``GET /api/v1/trust-bundle`` and sealed licences of its CA). Each round checks every file
once with :func:`verify.profile.check_profile` and once with :func:`verify.pdf.check_pdf` (no per-document
cache on either), so consecutive checks are of distinct files. Then ``--cli`` fresh processes of
``ecert verify FILE --bundle b.json --json`` and ``python -m ecert.commands.verify ...`` (median).
Numbers are printed as JSON, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verify.bundle import load_bundle
from verify.findings import SealFindings
from verify.pdf import check_pdf
from verify.profile import check_profile
from verify.trust import TrustMaterial

Check = Callable[..., SealFindings | None]


def _timed(check: Check, pdfs: list[bytes], trust: TrustMaterial, rounds: int) -> dict[str, float]:
    now = dt.datetime.now(dt.timezone.utc)
    for pdf in pdfs:  # warm-up: imports, certificate signature memo
        assert check(pdf, trust, now=now) is not None
    times = []
    for _ in range(rounds):
        for pdf in pdfs:
            started = time.perf_counter()
            found = check(pdf, trust, now=now)
            times.append(time.perf_counter() - started)
            assert found is not None and found.passed
    times.sort()
    return {"checks": len(times), "per_second": round(len(times) / sum(times), 1), "p50_ms": round(times[len(times) // 2] * 1000, 2),
            "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 2)}


def _cli(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cli", type=int, default=5, help="fresh processes per CLI command (0: skip)")
    parser.add_argument("pdfs", nargs="+")
    args = parser.parse_args()
    trust = load_bundle(Path(args.bundle).read_bytes()).trust
    pdfs = [Path(p).read_bytes() for p in args.pdfs]
    result: dict[str, Any] = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "load_average": os.getloadavg(),
                              "distinct_pdfs": len(pdfs), "profile": _timed(check_profile, pdfs, trust, args.rounds),
                              "pyhanko": _timed(check_pdf, pdfs, trust, max(1, args.rounds // 10))}
    if args.cli:
        ecert = shutil.which("ecert", path=str(Path(sys.executable).parent)) or "ecert"
        target = [args.pdfs[0], "--bundle", args.bundle, "--json"]
        result["cli_median_ms"] = {
            "python -c pass": _cli([sys.executable, "-c", "pass"], args.cli),
            "ecert verify licence.pdf --bundle b.json": _cli([ecert, "verify", *target], args.cli),
            "python -m ecert.commands.verify licence.pdf --bundle b.json": _cli([sys.executable, "-m", "ecert.commands.verify", *target], args.cli),
        }
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

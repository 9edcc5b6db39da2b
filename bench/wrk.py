"""wrk (Debian package ``wrk``, written in C) as the load generator of request/response scenarios.

A Python generator (asyncio + httpx) spends more CPU per request than the routes it measures once they answer
in well under a millisecond, and on a 2-core machine that CPU is taken from the server. wrk costs a few
microseconds per request. A Lua script picks each request (a random token, a fresh Idempotency-Key) and reports
counts and percentiles as one JSON line from ``done``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["available", "script", "run"]

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), e.connect, e.read, e.write, e.status,
    e.timeout))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(text: str) -> str:
    """A Lua long-bracket string literal holding ``text`` verbatim."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def script(path: Path, *, method: str, paths: Sequence[str], headers: Mapping[str, str] | None = None,
           body: str | None = None, body_files: Sequence[Path] = (), fresh_key: bool = False, threads: int = 2) -> Path:
    """A wrk script: each request takes a random path of ``paths``; ``fresh_key`` adds a new Idempotency-Key.

    With ``body_files`` the bodies are those files in turn, the ``threads`` wrk threads (as :func:`run` is given)
    taking every ``threads``-th one from their own offset, so a run shorter than the list sends each body once.
    """
    lines = ["math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))", "local n = 0",
             "local paths = {" + ", ".join(_lua(p) for p in paths) + "}",
             "local headers = {" + ", ".join(f"[ {_lua(k)} ] = {_lua(v)}" for k, v in (headers or {}).items()) + "}",
             f"local body = {_lua(body) if body is not None else 'nil'}", "local bodies = {}"]
    if body_files:
        lines += ["local threads = 0", "setup = function(thread) thread:set('tid', threads); threads = threads + 1 end",
                  "local files = {" + ", ".join(_lua(str(f)) for f in body_files) + "}",
                  "for i, name in ipairs(files) do local f = io.open(name, 'rb'); bodies[i] = f:read('*a'); f:close() end"]
    lines += ["request = function()", "  n = n + 1"]
    if body_files:
        lines.append(f"  body = bodies[((n - 1) * {threads} + (tid or 0)) % #bodies + 1]")
    if fresh_key:
        lines.append('  headers["Idempotency-Key"] = string.format("wrk-%d-%d-%d", math.random(1, 1e9), n, '
                     'math.random(1, 1e9))')
    lines += [f"  return wrk.format({_lua(method)}, paths[math.random(#paths)], headers, body)", "end", _DONE]
    path.write_text("\n".join(lines))
    return path


def run(base: str, lua: Path, *, seconds: float, connections: int, threads: int = 2, timeout_s: int = 30) -> dict[str, Any]:
    """Run wrk against ``base``; requests/s of 2xx/3xx answers, p50/p95/p99 in ms, errors by kind."""
    threads = max(1, min(threads, connections))
    completed = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
         "-s", str(lua), base],
        capture_output=True, text=True, check=True,
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {completed.stdout[-500:]} {completed.stderr[-500:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    elapsed = raw["duration_us"] / 1e6
    failed = {kind: raw[kind] for kind in ("connect", "read", "write", "status", "timeout") if raw[kind]}
    ok = raw["requests"] - raw["status"]
    return {"ok": ok, "errors": sum(failed.values()), "error_kinds": failed, "seconds": round(elapsed, 2),
            "per_s": round(ok / elapsed, 2) if elapsed else 0.0,
            **{f"p{q}_ms": round(raw[f"p{q}_us"] / 1000, 2) for q in (50, 95, 99)}}

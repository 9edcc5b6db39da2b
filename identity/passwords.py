"""Login secrets (passwords, second factors): argon2id password hashes, TOTP (RFC 6238) and one-time recovery codes.

Argon2id runs with OWASP's parameters (t=2, m=19 MiB, p=1) on ``HASH_SLOTS`` dedicated threads (one
per CPU) per process, so 200 concurrent logins queue for CPU instead of taking 200 x 19 MiB, and
only those few threads' malloc arenas ever hold the 19 MiB blocks (request threads would each keep
one).
TOTP accepts the current 30 s step and one either side, never a step at or before the last
one used (a code cannot be replayed). Every comparison of secrets is constant-time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict, TypeVar

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ecert.errors import InvalidInput

__all__ = [
    "ARGON2_PARAMETERS",
    "HASH_SLOTS",
    "HASH_SECONDS",
    "observed_hash_seconds",
    "hash_password",
    "verify_password",
    "needs_rehash",
    "check_password_policy",
    "new_totp_secret",
    "totp_uri",
    "match_totp",
    "totp_code",
    "new_recovery_codes",
    "recovery_hash",
    "keyed_hash",
]


class _Argon2Parameters(TypedDict):
    time_cost: int
    memory_cost: int
    parallelism: int
    hash_len: int
    salt_len: int


ARGON2_PARAMETERS: _Argon2Parameters = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1, "hash_len": 32, "salt_len": 16}
HASH_SLOTS = max(1, os.cpu_count() or 1)
_hasher = PasswordHasher(**ARGON2_PARAMETERS)
_pool = ThreadPoolExecutor(HASH_SLOTS, thread_name_prefix="argon2id")
# Verified against when the login name is unknown, so that path costs one argon2id too; timing it gives the cost
# of one hash on this machine (sizes the login queue, identity.admission).
_started = time.perf_counter()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
HASH_SECONDS = time.perf_counter() - _started
_KEY = b"ecert/identity/login-secrets/v1"
T = TypeVar("T")
MIN_PASSWORD, MAX_PASSWORD = 10, 256
TOTP_STEP = 30


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        detail = f"a password needs {MIN_PASSWORD}-{MAX_PASSWORD} characters"
        raise InvalidInput(detail, errors=[{"pointer": "#/password", "detail": detail}])


class _HashTimes:
    """Wall time of recent hashes on the hash threads (an exponentially weighted mean): with other workers and
    processes competing for the CPUs, this is what one check really takes here now."""

    def __init__(self) -> None:
        self.mean: float | None = None
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.mean = seconds if self.mean is None else 0.9 * self.mean + 0.1 * seconds


_times = _HashTimes()


def observed_hash_seconds() -> float | None:
    """Recent wall time of one argon2id hash or check in this process (None before the first)."""
    return _times.mean


def _timed(function: Callable[..., T], *args: str) -> T:
    started = time.perf_counter()
    try:
        return function(*args)
    finally:
        _times.observe(time.perf_counter() - started)


def hash_password(password: str) -> str:
    return _pool.submit(_timed, _hasher.hash, password).result()


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_timed(_hasher.verify, stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored``; with ``stored=None`` the same work, then False."""
    matched = _pool.submit(_verify, stored or _DUMMY_HASH, password[:MAX_PASSWORD]).result()
    return matched and stored is not None


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def keyed_hash(*parts: str) -> str:
    """HMAC-SHA256 (hex) of high-entropy secrets (session secrets, recovery codes): no slow hash needed."""
    message = b"\0".join(p.encode("utf-8", "surrogateescape") for p in parts)
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits


def totp_uri(secret: str, *, account_label: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_label, issuer_name=issuer)


def totp_code(secret: str, at: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def match_totp(secret: str, code: str, *, at: dt.datetime, last_step: int) -> int | None:
    """The time step ``code`` belongs to (now +-1), if later than ``last_step``; else None. Constant-time."""
    code = "".join(code.split())
    now_step = int(at.timestamp()) // TOTP_STEP
    totp = pyotp.TOTP(secret)
    found = None
    for step in (now_step - 1, now_step, now_step + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected.encode(), code.encode()[:16].ljust(len(expected), b"\0")) and step > last_step:
            found = step
    return found


def new_recovery_codes(count: int = 10) -> list[str]:
    """``count`` codes like ``k3m9q-x7p2d`` (50 bits each)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_hash(account_id: str, code: str) -> str:
    return keyed_hash("recovery", account_id, "".join(code.lower().split()).replace("-", ""))

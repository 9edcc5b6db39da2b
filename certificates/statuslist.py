"""Status lists: every licence's legal status as 4 bits in a large, signed, compressed list.

In the spirit of the W3C Bitstring Status List, in the format of the IETF OAuth Token Status List
(``statuslist+jwt``: ``{"status_list": {"bits": 4, "lst": base64url(zlib(bytes))}}``; entry ``i``
sits in the least significant bits first). Each list has :data:`LIST_SIZE` (131,072) entries and
each licence gets a *pseudo-random* index in the list that is open when it is issued: the k-th
licence of a list takes ``permute(list key, k)``, a keyed permutation, so indexes never collide,
reveal nothing about issue order, and one lookup reveals nothing about a holder (the whole list is
downloaded). The index travels in the licence's signed QR payload (``sl``), so a counter terminal
holding a recent list knows the status offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from certificates.jws import sign_compact, verify_compact
from certificates.statusbits import BITS, CODES, LIST_SIZE, STATUS_OF_CODE, decode, encode, entry, pack
from certificates.lifecycle import Status
from certificates.models import Licence, StatusList, StatusListToken
from ecert.clock import as_utc
from ecert.db import claim_apart
from ecert.errors import NotFound
from keys import KeyRef, KeyStore, KeyType, PublicKey

__all__ = [
    "LIST_SIZE", "BITS", "CODES", "STATUS_OF_CODE", "TOKEN_TYPE", "KEY_NAME", "permute", "pack", "entry", "encode", "decode",
    "assign_indexes", "mark_changed", "SignedStatusList", "current_token", "read_token", "UnknownStatusList",
]

TOKEN_TYPE = "statuslist+jwt"
KEY_NAME = "status-list"
_HALF = 9  # a balanced Feistel network over 18 bits; cycle-walk down to 17


class UnknownStatusList(NotFound):
    """No status list has this number."""

    slug = "unknown-status-list"
    title = "Unknown status list"


def _round(key: bytes, r: int, value: int) -> int:
    mac = hashlib.blake2s(bytes([r]) + value.to_bytes(2, "big"), key=key, digest_size=2).digest()  # a keyed PRF
    return int.from_bytes(mac, "big") & ((1 << _HALF) - 1)


def permute(key: bytes, k: int, size: int = LIST_SIZE) -> int:
    """A keyed permutation of ``range(size)`` (size <= 2**18): the list index of the k-th licence."""
    if not 0 <= k < size:
        raise ValueError("k out of range")
    x = k
    while True:
        left, right = x >> _HALF, x & ((1 << _HALF) - 1)
        for r in range(4):
            left, right = right, left ^ _round(key, r, right)
        x = (left << _HALF) | right
        if x < size:
            return x


# -- storage -------------------------------------------------------------------------------
_CLAIM = sa.text(
    "UPDATE status_list SET filled = filled + :n WHERE id = (SELECT max(id) FROM status_list) "
    "AND filled + :n <= size RETURNING id, filled, perm_key"
)


def assign_indexes(session: Session, count: int, now: dt.datetime) -> list[tuple[int, int]]:
    """``count`` fresh (list, index) slots (lists open as they fill).

    On PostgreSQL the slots are claimed in a short transaction of their own, so the list's counter
    row is not held locked while the caller seals PDFs (every department's issuance shares it); a
    slot left by a failed issuance is an unused entry, which reads as nothing. SQLite has one writer
    anyway, so there they are claimed in the caller's transaction.
    """
    return claim_apart(session, lambda own: _claim(own, count, now))


def _claim(session: Session, count: int, now: dt.datetime) -> list[tuple[int, int]]:
    slots: list[tuple[int, int]] = []
    while len(slots) < count:
        want = min(count - len(slots), 4096)
        row = session.execute(_CLAIM, {"n": want}).first()
        if row is None:
            current = session.execute(sa.select(sa.func.max(StatusList.id), sa.func.max(StatusList.filled))).first()
            last_id = current[0] if current and current[0] is not None else 0
            if last_id:  # fill what is left of the current list first
                last = session.get(StatusList, last_id, with_for_update=True)
                assert last is not None
                left = last.size - last.filled
                if left > 0:
                    want = min(want, left)
                    row = session.execute(_CLAIM, {"n": want}).first()
            if row is None:
                session.add(StatusList(id=last_id + 1, size=LIST_SIZE, bits=BITS, perm_key=secrets.token_bytes(16),
                                       filled=0, created_at=now))
                session.flush()
                continue
        list_id, filled, key = row
        slots.extend((list_id, permute(bytes(key), k)) for k in range(filled - want, filled))
    return slots


def mark_changed(session: Session, list_ids: Iterable[int | None]) -> None:
    """A status in these lists changed: the next request rebuilds them."""
    ids = sorted({i for i in list_ids if i is not None})
    if ids:
        session.execute(sa.update(StatusListToken).where(col(StatusListToken.list_id).in_(ids))
                        .values(changes=col(StatusListToken.changes) + 1))


@dataclass(frozen=True)
class SignedStatusList:
    list_id: int
    token: str
    issued_at: dt.datetime
    expires_at: dt.datetime


def _build(session: Session, keystore: KeyStore, record: StatusList, *, public_url: str, ttl: dt.timedelta,
           now: dt.datetime) -> str:
    rows = session.execute(
        select(Licence.status_index, Licence.status).where(Licence.status_list == record.id)
    )
    data = pack((index, CODES[Status(status)]) for index, status in rows if index is not None)
    key = keystore.create(KEY_NAME, KeyType.EC_P256).latest
    iat = int(now.timestamp())
    claims = {
        "iss": public_url.rstrip("/"), "sub": f"{public_url.rstrip('/')}/status-lists/{record.id}",
        "iat": iat, "exp": iat + int(ttl.total_seconds()) * 2, "ttl": int(ttl.total_seconds()),
        "status_list": {"bits": BITS, "lst": encode(data)},
    }
    return sign_compact(keystore, key, TOKEN_TYPE, [claims])[0]


def current_token(session: Session, keystore: KeyStore, list_id: int, *, public_url: str, now: dt.datetime,
                  ttl: dt.timedelta = dt.timedelta(minutes=5)) -> SignedStatusList:
    """The signed list, rebuilt when a status in it changed or it is older than ``ttl``."""
    record = session.get(StatusList, list_id)
    if record is None:
        raise UnknownStatusList(f"no status list {list_id}")
    cache = session.get(StatusListToken, list_id)
    if cache is None:
        cache = StatusListToken(list_id=list_id)
        session.add(cache)
        session.flush()
    fresh = (cache.token is not None and cache.built_at is not None and cache.built_from == cache.changes
             and now - as_utc(cache.built_at) < ttl)
    if not fresh:
        seen = cache.changes
        token = _build(session, keystore, record, public_url=public_url, ttl=ttl, now=now)
        session.execute(sa.update(StatusListToken).where(col(StatusListToken.list_id) == list_id)
                        .values(token=token, built_at=now, built_from=seen))
        cache.token, cache.built_at = token, now
    assert cache.token is not None and cache.built_at is not None
    built = as_utc(cache.built_at)
    return SignedStatusList(list_id, cache.token, built, built + ttl * 2)


def read_token(token: str, public_key: PublicKey) -> tuple[dict[str, object], bytes]:
    """(claims, raw list) of a status list token that verifies with ``public_key``; ValueError otherwise."""
    header, claims = verify_compact(token, public_key)
    if header.get("typ") != TOKEN_TYPE:
        raise ValueError(f"not a {TOKEN_TYPE}")
    status_list = claims.get("status_list")
    if not isinstance(status_list, dict) or status_list.get("bits") != BITS or not isinstance(status_list.get("lst"), str):
        raise ValueError("status_list claim missing or malformed")
    return claims, decode(status_list["lst"])


def status_key(keystore: KeyStore) -> KeyRef:
    return keystore.create(KEY_NAME, KeyType.EC_P256).latest

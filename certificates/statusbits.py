"""The status-list bit format, pure (counter terminals load it without the Vault client).

A list is :data:`LIST_SIZE` entries of :data:`BITS` bits, entry ``i`` in the low bits of byte ``i // 2``
first (IETF OAuth Token Status List order), zlib-compressed and base64url-encoded in the token's
``status_list.lst``. See :mod:`certificates.statuslist` for assignment, storage and signing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from certificates.jws import b64url, unb64url
from certificates.lifecycle import Status

__all__ = ["LIST_SIZE", "BITS", "CODES", "STATUS_OF_CODE", "pack", "entry", "encode", "decode"]

LIST_SIZE = 1 << 17  # 131,072 entries
BITS = 4
#: status -> 4-bit code (0 is "valid", as unused entries read).
CODES: dict[Status, int] = {
    Status.VALID: 0, Status.SUSPENDED: 1, Status.REVOKED: 2, Status.CANCELLED: 3, Status.EXPIRED: 4,
    Status.TRANSFERRED: 5, Status.WITHDRAWN: 6, Status.SUPERSEDED: 7, Status.OTHER: 8,
}
STATUS_OF_CODE = {code: status for status, code in CODES.items()}


def pack(entries: Iterable[tuple[int, int]], size: int = LIST_SIZE) -> bytes:
    """The raw list: ``(index, code)`` pairs into ``size`` 4-bit entries, index 0 in the low bits of byte 0."""
    data = bytearray(size * BITS // 8)
    for index, code in entries:
        byte, high = divmod(index, 2)
        data[byte] |= (code & 0xF) << (4 if high else 0)
    return bytes(data)


def entry(data: bytes, index: int) -> int:
    byte, high = divmod(index, 2)
    return (data[byte] >> (4 if high else 0)) & 0xF


def encode(data: bytes) -> str:
    return b64url(zlib.compress(data, 9))


def decode(lst: str, *, max_size: int = LIST_SIZE * BITS // 8) -> bytes:
    """Inflate a list, refusing anything that would expand beyond ``max_size`` bytes (zip bombs)."""
    inflater = zlib.decompressobj()
    data = inflater.decompress(unb64url(lst), max_size + 1)
    if len(data) > max_size or inflater.unconsumed_tail:
        raise ValueError("status list larger than allowed")
    return data

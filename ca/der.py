"""Just enough DER to assemble very large CRLs quickly (RFC 5280 §5.1), byte by byte.

``cryptography``'s CRL builder makes a Python object per entry (about 25 µs each); at a million
revoked certificates that is most of a minute. These helpers write the same bytes directly.
Every CRL they produce is parsed back by ``cryptography`` and checked by ``openssl crl`` and
``pkilint`` in the tests.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["tlv", "sequence", "integer", "oid", "octet_string", "bit_string", "time", "explicit"]


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are needed here")
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def octet_string(content: bytes) -> bytes:
    return tlv(0x04, content)


def bit_string(content: bytes) -> bytes:
    return tlv(0x03, b"\x00" + content)


def time(value: dt.datetime) -> bytes:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, whole seconds, Z."""
    if value.utcoffset():
        value = value.astimezone(dt.timezone.utc)
    v = value
    if v.year < 2050:
        return b"\x17\x0d" + f"{v.year % 100:02d}{v.month:02d}{v.day:02d}{v.hour:02d}{v.minute:02d}{v.second:02d}Z".encode()
    return b"\x18\x0f" + f"{v.year:04d}{v.month:02d}{v.day:02d}{v.hour:02d}{v.minute:02d}{v.second:02d}Z".encode()


def explicit(number: int, content: bytes) -> bytes:
    return tlv(0xA0 | number, content)

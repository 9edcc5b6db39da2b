"""A last line of defence: audit details never carry secrets or clear personal ID numbers.

Callers must not put them there; if one slips through, :func:`redact` replaces it before the
event is hashed and stored (and never fails, so a careless caller cannot turn into a 500):

* values under secret-looking keys (``password``, ``secret``, ``token``, ``private_key``,
  ``id_number``...) become ``"[redacted]"``;
* 18-character resident ID numbers (GB 11643: 17 digits and an ISO 7064 MOD 11-2 check
  character, with a plausible birth date) inside any string become ``"[redacted-id]"``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = ["redact", "redact_text", "is_resident_id"]

_SECRET_KEYS = re.compile(
    r"(^|_)pass(word|wd|phrase)?$|secret|token|private_?key|api_?key|id_?number|id_?card|(^|_)t?otp(_|$)", re.I
)
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def is_resident_id(text: str) -> bool:
    if len(text) != 18 or not text[:17].isdigit():
        return False
    if _CHECK[sum(int(c) * w for c, w in zip(text[:17], _WEIGHTS)) % 11] != text[17].upper():
        return False
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


def redact_text(value: str) -> str:
    return _CANDIDATE.sub(lambda m: "[redacted-id]" if is_resident_id(m.group()) else m.group(), value)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with secrets and resident ID numbers replaced."""
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_KEYS.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value

"""Holders: a person (resident ID number, GB 11643) or an enterprise (unified social credit code, GB 32100).

ID numbers are checked for form and check character, then only ever stored encrypted (Vault
transit key ``pii``) with a keyed blind index (transit HMAC key ``pii-index``) to find a
holder's licences. Nothing here logs or returns a clear ID number.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ecert.errors import InvalidInput
from keys import DataProtector, KeyStore, KeyType

__all__ = ["HolderKind", "Holder", "normalise_holder_id", "mask", "PiiVault", "PII_KEY", "PII_INDEX_KEY"]

T = TypeVar("T")
U = TypeVar("U")
PII_KEY = "pii"
PII_INDEX_KEY = "pii-index"
_PERSON = re.compile(r"^\d{17}[\dX]$")
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC = re.compile(rf"^[{_USCC_ALPHABET}]{{18}}$")
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class HolderKind(str, enum.Enum):
    PERSON = "person"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class Holder:
    kind: HolderKind
    name: str
    id_number: str

    def __repr__(self) -> str:  # never print the ID number
        return f"Holder({self.kind.value}, {self.name!r}, {mask(self.id_number)})"


def _person_check(body: str) -> str:
    """GB 11643 check character: ISO/IEC 7064 MOD 11-2."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return "10X98765432"[total % 11]


def _uscc_check(body: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def normalise_holder_id(kind: HolderKind, value: str) -> str:
    """Upper-cased, blank-free ID; InvalidInput (pointer ``#/holder/id_number``) when malformed."""
    text = re.sub(r"\s+", "", str(value)).upper()
    if kind is HolderKind.PERSON:
        ok = bool(_PERSON.match(text)) and _person_check(text[:17]) == text[17]
        what = "an 18-character resident ID number with a valid check character"
    else:
        ok = bool(_USCC.match(text)) and _uscc_check(text[:17]) == text[17]
        what = "an 18-character unified social credit code with a valid check character"
    if not ok:
        detail = f"must be {what}"
        raise InvalidInput(f"holder ID: {detail}", errors=[{"pointer": "#/holder/id_number", "detail": detail}])
    return text


def mask(value: str) -> str:
    """Show the first 2 and last 2 characters only."""
    return value[:2] + "*" * max(len(value) - 4, 0) + value[-2:] if len(value) > 4 else "*" * len(value)


_CHUNK = 200  # items per transit request (OpenBao refuses very large JSON bodies)


def _chunked(function: Callable[[list[T]], list[U]], items: list[T]) -> list[U]:
    out: list[U] = []
    for start in range(0, len(items), _CHUNK):
        out.extend(function(items[start : start + _CHUNK]))
    return out


class PiiVault:
    """Encrypts holder IDs and computes their blind index through Vault transit (chunked batches)."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._ready = False

    def _protector(self) -> DataProtector:
        assert isinstance(self._keys, DataProtector)
        if not self._ready:
            self._keys.create(PII_KEY, KeyType.AES256_GCM)
            self._keys.create(PII_INDEX_KEY, KeyType.AES256_GCM)
            self._ready = True
        return self._keys

    def protect(self, kind: HolderKind, id_numbers: list[str]) -> list[tuple[str, str]]:
        """(ciphertext, blind index hex) for each ID number, in two Vault round trips."""
        if not id_numbers:
            return []
        protector = self._protector()
        ciphertexts = _chunked(lambda part: protector.encrypt(PII_KEY, part), [i.encode() for i in id_numbers])
        indexes = self.index(kind, id_numbers)
        return list(zip(ciphertexts, indexes))

    def index(self, kind: HolderKind, id_numbers: list[str]) -> list[str]:
        protector = self._protector()
        messages = [f"{kind.value}:{i}".encode() for i in id_numbers]
        return [h.hex() for h in _chunked(lambda part: protector.hmac(PII_INDEX_KEY, part), messages)]

    def reveal(self, ciphertext: str) -> str:
        return self._protector().decrypt(PII_KEY, [ciphertext])[0].decode()

    def seal_many(self, values: list[str]) -> list[str]:
        """Encrypt values (e.g. bulk rows waiting to be issued) with the ``pii`` key."""
        protector = self._protector()
        return _chunked(lambda part: protector.encrypt(PII_KEY, part), [v.encode() for v in values])

    def open_many(self, ciphertexts: list[str]) -> list[str]:
        protector = self._protector()
        return [p.decode() for p in _chunked(lambda part: protector.decrypt(PII_KEY, part), list(ciphertexts))]

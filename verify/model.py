"""Verification results: frozen dataclasses, never exceptions for "invalid".

A :class:`Verdict` is what a citizen, a bank or a counter terminal gets back: one outcome, the
checks behind it (each with a reason in English and Chinese), what the licence says (holder
masked as its type allows), how and when it was checked (online, or offline from a trust bundle
of a given age).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, overload

from certificates.lifecycle import STATUS_WORDS

__all__ = ["TOKEN_PATTERN", "Outcome", "OUTCOME_WORDS", "Check", "HistoryEntry", "Transparency", "LicenceSummary", "Verdict",
           "VerdictJson", "Answer", "check", "failed_outcome"]


#: The shape of a verification token (``secrets.token_urlsafe(18)`` gives 24 characters).
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class Outcome(str, enum.Enum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    TRANSFERRED = "transferred"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"
    OTHER = "other"
    AUTHENTIC = "authentic"  # offline: genuine as issued; its current status was not checked
    NOT_FOUND = "not_found"
    INVALID = "invalid"  # forged, altered or untrusted
    UNREADABLE = "unreadable"  # not a PDF, damaged, an incomplete download, or refused unread (too large or complex)

    @property
    def good(self) -> bool:
        return self in (Outcome.VALID, Outcome.AUTHENTIC)


# The banner of the verification page and the CLI: (zh, en); a licence's status in the library's words.
OUTCOME_WORDS: dict[Outcome, tuple[str, str]] = {
    **{Outcome(status.value): words for status, words in STATUS_WORDS.items()},
    Outcome.AUTHENTIC: ("真实（离线核验，未查询当前状态）", "Genuine (checked offline; current status not checked)"),
    Outcome.NOT_FOUND: ("未找到该证照", "No such licence"),
    Outcome.INVALID: ("无效：伪造或被篡改", "Invalid: forged or altered"),
    Outcome.UNREADABLE: ("无法核验：不是 PDF、文件已损坏、下载不完整或过于复杂", "Cannot be checked: not a PDF, damaged, an incomplete download, or too complex"),
}


@dataclass(frozen=True, slots=True)
class Check:
    """One check and its result; ``name`` is a stable code (documented in docs/verification.md)."""

    name: str
    passed: bool
    reason_en: str
    reason_zh: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "reason": {"en": self.reason_en, "zh": self.reason_zh}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Check:
        return cls(data["name"], data["passed"], data["reason"]["en"], data["reason"]["zh"])


def check(name: str, passed: bool, en: str, zh: str) -> Check:
    return Check(name, passed, en, zh)


def failed_outcome(checks: tuple[Check, ...] | list[Check]) -> Outcome:
    """``unreadable`` when the only failure is that the file could not be read, else ``invalid`` (forged or altered)."""
    failed = {c.name for c in checks if not c.passed}
    return Outcome.UNREADABLE if failed == {"readable"} else Outcome.INVALID


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    effective_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "from": self.from_status, "to": self.to_status, "reason": self.reason,
                "effective_at": _iso(self.effective_at)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(data["action"], data["from"], data["to"], data["reason"], _time(data["effective_at"]))


@dataclass(frozen=True, slots=True)
class Transparency:
    """Whether the licence's leaf is in the public transparency log, and the proof if it is."""

    logged: bool
    leaf_hash: str | None = None  # base64
    leaf_index: int | None = None
    tree_size: int | None = None
    audit_path: tuple[str, ...] = ()
    tree_head: dict[str, Any] | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"logged": self.logged, "leaf_hash": self.leaf_hash, "leaf_index": self.leaf_index,
                "tree_size": self.tree_size, "audit_path": list(self.audit_path), "tree_head": self.tree_head,
                "note": self.note}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transparency:
        return cls(data["logged"], data["leaf_hash"], data["leaf_index"], data["tree_size"], tuple(data["audit_path"]),
                   data["tree_head"], data["note"])


@dataclass(frozen=True, slots=True)
class LicenceSummary:
    """What the public may see of a licence (its type's disclosure policy; holder masked by default)."""

    number: str
    type_code: str
    type_version: int
    type_name_zh: str | None
    type_name_en: str | None
    issuer: str
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    issued_at: dt.datetime | None
    holder: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    status_zh: str | None = None
    status_en: str | None = None
    status_reason: str | None = None
    status_effective_at: dt.datetime | None = None
    superseded_by: str | None = None  # verification link of the current version
    supersedes_number: str | None = None
    issuer_name: str | None = None
    field_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {"zh", "en"}

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "type": {"code": self.type_code, "version": self.type_version, "name_zh": self.type_name_zh,
                     "name_en": self.type_name_en},
            "issuer": self.issuer,
            "issuer_name": self.issuer_name,
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
            "issued_at": _iso(self.issued_at),
            "holder": self.holder,
            "fields": self.fields,
            "field_labels": self.field_labels,
            "status": self.status,
            "status_text": {"zh": self.status_zh, "en": self.status_en} if self.status else None,
            "status_reason": self.status_reason,
            "status_effective_at": _iso(self.status_effective_at),
            "superseded_by": self.superseded_by,
            "supersedes_number": self.supersedes_number,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LicenceSummary:
        kind, words = data["type"], data["status_text"] or {}
        return cls(data["number"], kind["code"], kind["version"], kind["name_zh"], kind["name_en"], data["issuer"],
                   _time(data["valid_from"]), _time(data["valid_until"]), _time(data["issued_at"]), data["holder"],
                   data["fields"], data["status"], words.get("zh"), words.get("en"), data["status_reason"],
                   _time(data["status_effective_at"]), data["superseded_by"], data["supersedes_number"],
                   data["issuer_name"], data["field_labels"])


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    checks: tuple[Check, ...]
    licence: LicenceSummary | None
    checked_at: dt.datetime
    mode: str = "online"  # online | offline
    bundle_age_seconds: float | None = None
    bundle_stale: bool | None = None
    history: tuple[HistoryEntry, ...] = ()
    transparency: Transparency | None = None

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def words(self) -> tuple[str, str]:
        return OUTCOME_WORDS[self.outcome]

    def to_json(self) -> dict[str, Any]:
        zh, en = self.words
        return {
            "outcome": self.outcome.value,
            "outcome_text": {"zh": zh, "en": en},
            "good": self.outcome.good,
            "checks": [c.to_json() for c in self.checks],
            "failed": [c.name for c in self.failed],
            "licence": self.licence.to_json() if self.licence else None,
            "history": [h.to_json() for h in self.history],
            "transparency": self.transparency.to_json() if self.transparency else None,
            "checked_at": _iso(self.checked_at),
            "mode": self.mode,
            "bundle_age_seconds": self.bundle_age_seconds,
            "bundle_stale": self.bundle_stale,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        """The verdict :meth:`to_json` described (equal to it)."""
        return cls(Outcome(data["outcome"]), tuple(Check.from_json(c) for c in data["checks"]),
                   LicenceSummary.from_json(data["licence"]) if data["licence"] else None,
                   _time(data["checked_at"]), data["mode"], data["bundle_age_seconds"], data["bundle_stale"],
                   tuple(HistoryEntry.from_json(h) for h in data["history"]),
                   Transparency.from_json(data["transparency"]) if data["transparency"] else None)


_SPLICE = secrets.token_hex(16)  # where checked_at goes; random, so no licence's content can contain it


@dataclass(frozen=True, slots=True)
class VerdictJson:
    """A verdict's JSON body (:meth:`Verdict.to_json`, compact UTF-8, as Starlette's JSONResponse renders it), encoded
    once: the answers of a remembered verdict differ only in ``checked_at``, which :meth:`at` splices in."""

    before: bytes
    after: bytes

    @classmethod
    def of(cls, verdict: Verdict) -> VerdictJson:
        document = verdict.to_json()
        document["checked_at"] = _SPLICE
        body = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        before, after = body.split(_SPLICE.encode())
        return cls(before, after)

    def at(self, checked_at: dt.datetime) -> bytes:
        return b"".join((self.before, _iso(checked_at).encode(), self.after))


@dataclass(frozen=True, slots=True)
class Answer:
    """What a lookup answers: the outcome and the verdict's JSON body. The verdict itself is decoded from the body
    when a caller needs it (the page, an identified check), so the answers a worker remembers are a few byte strings
    each, not object graphs for the garbage collector to walk."""

    outcome: Outcome
    body: bytes

    def verdict(self) -> Verdict:
        return Verdict.from_json(json.loads(self.body))


@overload
def _time(value: str) -> dt.datetime: ...
@overload
def _time(value: str | None) -> dt.datetime | None: ...
def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


@overload
def _iso(value: dt.datetime) -> str: ...
@overload
def _iso(value: dt.datetime | None) -> str | None: ...
def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()

"""Who checked a licence: disclosures to identified checkers, for the holder to read.

Every time an identified party (counter staff, a department's API client, a platform app) is
shown a licence, :func:`record_access` writes a :class:`certificates.models.LicenceAccess` row
and its audit event in the caller's transaction: who (kind, id, display name, hall or
department), when, the declared purpose, the channel and what was disclosed. Anonymous link
checks are never recorded here; they are only counted (``audit.stats``, ``verify.link``).

The holder is named by the licence's blind index (``holder_index``), so an account finds its
history with its own ``id_index`` and nothing is decrypted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session, col, select

from audit.trail import record_event
from certificates.models import Licence, LicenceAccess
from ecert.errors import InvalidInput

__all__ = [
    "PURPOSES",
    "CHANNELS",
    "CheckerKind",
    "Checker",
    "Purpose",
    "Disclosed",
    "InvalidPurpose",
    "parse_purpose",
    "disclosed_in_view",
    "record_access",
    "history_for_holder",
]

CheckerKind = Literal["staff", "department", "app"]
Rule = Literal["full", "masked", "hidden"]

# code -> (zh, en). Anything else is free text, filed under "other".
PURPOSES: dict[str, tuple[str, str]] = {
    "service": ("办理政务服务事项", "Handling a government service"),
    "eligibility": ("资格审核", "Checking eligibility"),
    "employment": ("入职或从业资格核验", "Employment or practice check"),
    "transaction": ("签订合同或办理交易", "A contract or transaction"),
    "inspection": ("监管执法检查", "Regulatory inspection"),
    "holder-request": ("持证人本人使用", "At the holder's own request"),
    "other": ("其他", "Other"),
}
CHANNELS: dict[str, tuple[str, str]] = {
    "counter": ("窗口调阅", "At a service counter"),
    "api-verify": ("接口核验", "Verification through the API"),
    "api-pdf": ("上传文件核验", "Uploaded document check"),
    "api-consent": ("经授权的应用读取", "App reading under your consent"),
}
_FREE_TEXT_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidPurpose(InvalidInput):
    """An identified check must declare why: a purpose code or a short free text."""

    slug = "purpose-required"
    title = "Declare the purpose of the check"


@dataclass(frozen=True)
class Checker:
    """An identified party that is shown licences."""

    kind: CheckerKind
    id: str
    name: str
    org: str | None = None

    @property
    def actor(self) -> str:
        return f"{'client' if self.kind != 'staff' else 'staff'}:{self.id}"


@dataclass(frozen=True)
class Purpose:
    """A declared purpose: a code of :data:`PURPOSES`, with the free text when the code is ``other``."""

    code: str
    text: str | None = None

    def words(self, lang: str) -> str:
        if self.text:
            return self.text
        zh, en = PURPOSES.get(self.code, (self.code, self.code))
        return zh if lang == "zh" else en


@dataclass(frozen=True)
class Disclosed:
    """What a checker saw: the licence type's fields by name, and how the holder's name and ID number were shown."""

    fields: tuple[str, ...] = ()
    holder_name: Rule = "hidden"
    holder_id: Rule = "hidden"

    def as_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "holder_name": self.holder_name, "holder_id": self.holder_id}


def parse_purpose(value: str | None) -> Purpose:
    """A purpose code, or free text of 3-200 characters (filed as ``other``); else :class:`InvalidPurpose`."""
    text = " ".join(_CONTROL.sub(" ", value or "").split())
    if text in PURPOSES and text != "other":
        return Purpose(text)
    if len(text) < 3 or len(text) > _FREE_TEXT_MAX:
        raise InvalidPurpose(f"send purpose: one of {', '.join(PURPOSES)} or a free text of 3-{_FREE_TEXT_MAX} characters",
                             errors=[{"pointer": "query:/purpose", "detail": "required"}])
    return Purpose("other", text)


def disclosed_in_view(licence: Licence, holder: Mapping[str, Any], fields: Mapping[str, Any]) -> Disclosed:
    """What a public view (``certificates.disclosure.public_view`` or a verdict's summary) showed of ``licence``."""
    name = holder.get("name")
    name_rule: Rule = "hidden" if name is None else ("full" if name == licence.holder_name else "masked")
    shown_id = holder.get("id_number")
    id_rule: Rule = "hidden" if shown_id is None else ("masked" if "*" in str(shown_id) else "full")
    return Disclosed(tuple(sorted(fields)), name_rule, id_rule)


def record_access(
    session: Session, *, licence: Licence, checker: Checker, purpose: Purpose, channel: str, disclosed: Disclosed,
    now: dt.datetime,
) -> LicenceAccess:
    """Write one disclosure and its audit event (``licence.access``) in ``session``'s transaction."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    row = LicenceAccess(
        licence_id=licence.id, licence_number=licence.number, type_code=licence.type_code, holder_kind=licence.holder_kind,
        holder_index=licence.holder_index, checker_kind=checker.kind, checker_id=checker.id, checker_name=checker.name[:200],
        checker_org=checker.org, purpose=purpose.code, purpose_text=purpose.text, channel=channel,
        disclosed=disclosed.as_dict(), at=now,
    )
    session.add(row)
    session.flush()
    record_event(session, action="licence.access", actor=checker.actor, target=f"licence:{licence.id}",
                 department=licence.department_code, details={
                     "checker_kind": checker.kind, "org": checker.org, "purpose": purpose.code, "channel": channel,
                     "disclosed": disclosed.as_dict()}, at=now)
    return row


def _holder_query(holder_kind: str, holder_index: str) -> Any:
    return select(LicenceAccess).where(LicenceAccess.holder_index == holder_index, LicenceAccess.holder_kind == holder_kind)


def history_for_holder(
    session: Session, *, holder_kind: str, holder_index: str, limit: int = 20, offset: int = 0,
) -> list[LicenceAccess]:
    """The holder's disclosures, newest first (found by blind index; nobody else's rows)."""
    query = _holder_query(holder_kind, holder_index).order_by(col(LicenceAccess.at).desc(), col(LicenceAccess.id).desc())
    return list(session.exec(query.offset(max(offset, 0)).limit(max(min(limit, 100), 1))).all())

"""What the public verification page may show of a licence, per its type's disclosure policy.

Masked by default: a type that says nothing shows the holder's name masked, no ID number and no
fields. ``full`` shows a value, ``masked`` keeps its first and last characters, ``hidden`` omits it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from certificates.holders import mask
from certificates.lifecycle import STATUS_WORDS
from certificates.models import Licence, LicenceType
from certificates.records import effective_status

__all__ = ["mask_name", "public_view"]


def mask_name(name: str) -> str:
    """张三丰 -> 张*丰, 张三 -> 张*, Acme Ltd -> A******d."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _holder(licence: Licence, policy: dict[str, Any], reveal_id: Callable[[str], str] | None) -> dict[str, Any]:
    holder: dict[str, Any] = {"kind": licence.holder_kind}
    name_rule = policy.get("holder_name", "masked")
    if name_rule == "full":
        holder["name"] = licence.holder_name
    elif name_rule == "masked":
        holder["name"] = mask_name(licence.holder_name)
    id_rule = policy.get("holder_id", "hidden")
    if id_rule in ("full", "masked") and reveal_id is not None:
        clear = reveal_id(licence.holder_id_cipher)
        holder["id_number"] = clear if id_rule == "full" else mask(clear)
    return holder


def public_view(
    licence: Licence, licence_type: LicenceType | None, *, now: dt.datetime,
    reveal_id: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The licence as the public may see it (status in plain words, disclosed holder data only)."""
    policy = licence_type.disclosure if licence_type is not None else {}
    status = effective_status(licence, now)
    zh, en = STATUS_WORDS[status]
    shown = [name for name in policy.get("fields", []) if name in licence.fields]
    return {
        "number": licence.number,
        "type": {"code": licence.type_code, "version": licence.type_version,
                 "name_zh": licence_type.name_zh if licence_type else None,
                 "name_en": licence_type.name_en if licence_type else None},
        "issuer": licence.department_code,
        "status": status.value,
        "status_text": {"zh": zh, "en": en},
        "status_reason": licence.status_reason,
        "status_effective_at": licence.status_effective_at.isoformat() if licence.status_effective_at else None,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "issued_at": licence.issued_at.isoformat(),
        "holder": _holder(licence, policy, reveal_id),
        "fields": {name: licence.fields[name] for name in shown},
        "supersedes_number": licence.associated_number,
        "superseded_by": licence.superseded_by_id,
        "pdf_sha256": licence.pdf_sha256,
    }

"""Plain representations of records for the API and the CLI (no clear holder ID, ever)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from certificates.lifecycle import STATUS_WORDS, allowed_actions
from certificates.models import BulkJob, BulkJobItem, Licence, LicenceEvent, LicenceType
from certificates.records import effective_status

__all__ = ["licence_view", "event_view", "type_view", "job_view", "item_view", "verification_url"]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


def verification_url(public_url: str, licence: Licence) -> str:
    return f"{public_url.rstrip('/')}/v/{licence.token}"


def licence_view(licence: Licence, *, now: dt.datetime, public_url: str, history: list[LicenceEvent] | None = None) -> dict[str, Any]:
    status = effective_status(licence, now)
    zh, en = STATUS_WORDS[status]
    view: dict[str, Any] = {
        "id": licence.id,
        "number": licence.number,
        "verification_url": verification_url(public_url, licence),
        "type": {"code": licence.type_code, "version": licence.type_version},
        "department": licence.department_code,
        "holder": {"kind": licence.holder_kind, "name": licence.holder_name},
        "fields": licence.fields,
        "status": status.value,
        "status_text": {"zh": zh, "en": en},
        "status_reason": licence.status_reason,
        "status_effective_at": _iso(licence.status_effective_at),
        "allowed_actions": [a.value for a in allowed_actions(status)],
        "valid_from": _iso(licence.valid_from),
        "valid_until": _iso(licence.valid_until),
        "issued_at": _iso(licence.issued_at),
        "historical": licence.historical,  # recorded as an import of a licence issued before ecert
        "supersedes": licence.supersedes_id,
        "superseded_by": licence.superseded_by_id,
        "associated_number": licence.associated_number,
        "qr": licence.qr_payload,
        "pdf": {"sha256": licence.pdf_sha256, "url": f"/api/v1/licences/{licence.id}/pdf"} if licence.pdf_blob_key else None,
    }
    if history is not None:
        view["history"] = [event_view(e) for e in history]
    return view


def event_view(event: LicenceEvent) -> dict[str, Any]:
    return {
        "action": event.action, "from": event.from_status, "to": event.to_status, "reason": event.reason,
        "effective_at": _iso(event.effective_at), "actor": event.actor, "at": _iso(event.at),
    }


def type_view(row: LicenceType) -> dict[str, Any]:
    return {
        "code": row.code, "department": row.department_code, "version": row.version, "name_zh": row.name_zh,
        "name_en": row.name_en, "fields_schema": row.fields_schema, "validity": row.validity, "layout": row.layout,
        "disclosure": row.disclosure, "active": row.active, "created_at": _iso(row.created_at),
    }


def job_view(job: BulkJob) -> dict[str, Any]:
    return {
        "id": job.id, "department": job.department_code, "type": job.type_code, "type_version": job.type_version,
        "status": job.status, "cancel_requested": job.cancel_requested, "total": job.total,
        "succeeded": job.succeeded, "failed": job.failed, "pending": job.total - job.succeeded - job.failed
        if job.status not in ("cancelled",) else 0,
        "progress": round((job.succeeded + job.failed) / job.total, 4) if job.total else 1.0,
        "last_error": job.last_error, "created_at": _iso(job.created_at), "updated_at": _iso(job.updated_at),
        "finished_at": _iso(job.finished_at),
    }


def item_view(item: BulkJobItem) -> dict[str, Any]:
    return {"row": item.row, "status": item.status, "licence_id": item.licence_id, "error": item.error}

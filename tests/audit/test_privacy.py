"""Secrets and resident ID numbers never reach the audit trail, even when a caller slips."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from audit import record_event
from audit.integrity import verify_trail
from audit.privacy import is_resident_id, redact
from ecert.db import session_scope
from keys import TransitKeyStore

VALID_ID = "11010519491231002X"  # the GB 11643 example number


def test_resident_id_check() -> None:
    assert is_resident_id(VALID_ID)
    assert not is_resident_id("110105194912310021")  # wrong check character
    assert not is_resident_id("110105194913310020")  # no 13th month
    assert not is_resident_id("a" * 18)


def test_redaction() -> None:
    details = {"password": "hunter2", "api_key": "k", "totp_secret": "s", "note": f"holder {VALID_ID} called",
               "nested": [{"id_number": "x"}, "110105194912310021"], "total": 3, "number": "FOOD-D01-2026-000001"}
    assert redact(details) == {
        "password": "[redacted]", "api_key": "[redacted]", "totp_secret": "[redacted]",
        "note": "holder [redacted-id] called", "nested": [{"id_number": "[redacted]"}, "110105194912310021"],
        "total": 3, "number": "FOOD-D01-2026-000001",
    }


def test_record_event_redacts_before_hashing(engine: Engine, keystore: TransitKeyStore, uid: str) -> None:
    with session_scope(engine) as session:
        event = record_event(session, action="test.privacy", actor="system", target=f"holder:{VALID_ID}",
                             details={"secret_id": "s.abc", "reason": f"typo in {VALID_ID}", "u": uid})
    assert event.target == "holder:[redacted-id]"
    assert event.details == {"secret_id": "[redacted]", "reason": "typo in [redacted-id]", "u": uid}
    with Session(engine) as session:
        assert verify_trail(session, keystore).ok

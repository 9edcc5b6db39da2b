"""Status lists: a keyed permutation of slots, 4-bit entries, signed tokens a second JOSE library accepts."""

from __future__ import annotations

import base64
import json
import secrets
import zlib

import pytest
from fastapi.testclient import TestClient
from jwcrypto import jwk, jws
from sqlalchemy.engine import Engine
from sqlmodel import Session

from certificates.issuance import Actor, Issuer
from certificates.lifecycle import Action
from certificates.models import Licence, LicenceType, StatusList
from certificates import records, statuslist
from certificates.qr import split_qr, verify_payload
from ecert.clock import SystemClock
from ecert.db import session_scope
from keys import TransitKeyStore
from tests.support.licences import issue_licence as issue


def test_the_permutation_is_a_bijection() -> None:
    key = secrets.token_bytes(16)
    full = {statuslist.permute(key, k) for k in range(statuslist.LIST_SIZE)}
    assert full == set(range(statuslist.LIST_SIZE))
    first = [statuslist.permute(key, k) for k in range(20)]
    assert first != sorted(first)  # not issue order


def test_entries_pack_four_bits_low_nibble_first() -> None:
    data = statuslist.pack([(0, 2), (1, 7), (131_071, 8)])
    assert len(data) == statuslist.LIST_SIZE // 2 and data[0] == 0x72
    assert [statuslist.entry(data, i) for i in (0, 1, 2, 131_071)] == [2, 7, 0, 8]
    assert statuslist.decode(statuslist.encode(data)) == data
    bomb = base64.urlsafe_b64encode(zlib.compress(b"\0" * (statuslist.LIST_SIZE))).decode().rstrip("=")
    with pytest.raises(ValueError):
        statuslist.decode(bomb)


def test_slots_are_unique_and_lists_open_as_they_fill(engine: Engine) -> None:
    now = SystemClock().now()
    with session_scope(engine) as session:
        first = statuslist.assign_indexes(session, 3, now)
        current = session.get(StatusList, first[0][0])
        assert current is not None
        current.size = current.filled + 2  # pretend the list is nearly full
        session.add(current)
    with session_scope(engine) as session:
        more = statuslist.assign_indexes(session, 5, now)
    assert len(set(first + more)) == 8
    lists = sorted({list_id for list_id, _ in more})
    assert len(lists) == 2 and [lid for lid, _ in more].count(lists[0]) == 2


def test_a_licence_carries_its_slot_and_the_signed_list_follows_its_status(
    engine: Engine, issuer: Issuer, actor: Actor, department: str, licence_type: LicenceType, keystore: TransitKeyStore,
    client: TestClient, runtime,  # type: ignore[no-untyped-def]
) -> None:
    assert runtime.engine is engine  # the HTTP client serves the same database
    licence = issue(engine, issuer, actor, department)
    assert licence.status_list is not None and licence.status_index is not None
    _, token = split_qr(licence.qr_payload or "")
    claims = verify_payload(token or "", keystore.public_key(issuer.seal_keys.qr_key(department)))["claims"]
    assert claims["sl"] == [licence.status_list, licence.status_index]

    def published() -> tuple[dict[str, object], bytes]:
        response = client.get(f"/status-lists/{licence.status_list}")
        assert response.status_code == 200 and response.headers["content-type"] == "application/statuslist+jwt"
        key = keystore.key_info(statuslist.KEY_NAME)
        return statuslist.read_token(response.text, key.public_key())

    claims_before, data = published()
    assert statuslist.entry(data, licence.status_index) == 0
    assert claims_before["status_list"]["bits"] == 4  # type: ignore[index]
    with session_scope(engine) as session:
        records.change_status(session, actor, licence.id, Action.SUSPEND, reason="inspection", effective_at=None,
                              clock=SystemClock())
    _, data = published()
    assert statuslist.STATUS_OF_CODE[statuslist.entry(data, licence.status_index)].value == "suspended"

    # a second JOSE library accepts the token with the published public key
    response = client.get(f"/status-lists/{licence.status_list}")
    public = jwk.JWK.from_pem(keystore.key_info(statuslist.KEY_NAME).versions[1].public_key_pem.encode())
    checked = jws.JWS()
    checked.deserialize(response.text)
    checked.verify(public)
    assert json.loads(checked.payload)["sub"].endswith(f"/status-lists/{licence.status_list}")
    assert client.get("/status-lists/999999").status_code == 404
    with Session(engine) as session:
        assert session.get(Licence, licence.id) is not None

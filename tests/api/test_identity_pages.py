"""The citizen portal and the counter console in headless Chromium: the whole walk-in flow, with screenshots."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy.engine import Engine

from certificates.holders import PiiVault
from certificates.issuance import Actor, Issuer
from certificates.models import LicenceType
from ecert.db import session_scope
from identity import accounts, counter
from tests.certificates.conftest import actor, department, issuer, licence_type, request_for, seal_keys  # noqa: F401
from tests.support.browser import CHROMIUM, Browser
from tests.identity.conftest import PASSWORD, person_id, phone_number, pii  # noqa: F401

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/install-system-tools.sh")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()




def test_walk_in_flow(
    browser: Browser, live_url: str, engine: Engine, pii: PiiVault, issuer: Issuer, actor: Actor,  # noqa: F811
    department: str, licence_type: LicenceType, artifacts: Path,  # noqa: F811
) -> None:
    id_number, walk_in_id = person_id(), person_id()
    username = f"clerk-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.timezone.utc)
    with session_scope(engine) as session:
        counter.add_staff(session, pii, username=username, name="窗口三号", id_number=person_id(), password=PASSWORD,
                          roles=["counter"], hall="TIANHE-1", actor="test", now=now)
        for holder in (id_number, walk_in_id):
            issuer.issue_one(session, actor, issuer.prepare(session, actor, department,
                                                            request_for(holder_kind="person", holder_name="林八", holder_id=holder)))

    # --- the citizen on a phone: register, enrol TOTP, log in again with it, show the QR
    phone = browser.page(390, 844, mobile=True)
    phone.goto(f"{live_url}/portal/register?lang=zh")
    phone.fill("#name", "林八")
    phone.fill("#id_number", id_number)
    phone.fill("#phone", phone_number())
    phone.fill("#password", PASSWORD)
    phone.screenshot(artifacts / "identity-register-zh.png")
    phone.click("#register")
    assert phone.path == "/portal/totp"
    phone.screenshot(artifacts / "identity-totp-enrol-zh.png")
    secret = phone.text("#totp-secret").strip()
    phone.fill("#code", pyotp.TOTP(secret).now())
    phone.click("#confirm")
    assert len(phone.text("#recovery").split()) == 10
    phone.click("a[href='/portal']")
    phone.click("#logout")
    phone.goto(f"{live_url}/portal/login?lang=en")
    phone.fill("#login_name", id_number)
    phone.fill("#password", PASSWORD)
    phone.click("#login")
    assert phone.path.startswith("/portal/login/code")
    phone.fill("#code", pyotp.TOTP(secret).at(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)))
    phone.click("#verify")
    assert phone.path == "/portal"
    assert phone.text("#acr") == "pwd+totp" and "林八" in phone.text("#account-name")
    assert id_number not in phone.text() and phone.js("document.querySelectorAll('#licences tr').length") == 1
    assert "Sessions" in phone.text() and "success" in phone.text("#history")
    phone.screenshot(artifacts / "identity-portal-home-en.png")
    phone.goto(f"{live_url}/portal/qr?share=1")
    qr_text = phone.text("#qr-text").strip()
    assert qr_text.count(".") == 2 and phone.js("document.querySelector('.qr svg') !== null")
    phone.screenshot(artifacts / "identity-counter-qr-en.png")

    # --- the counter terminal: staff log in, the scanner types the QR, check, proof, licences
    desk = browser.page(1280, 800, mobile=False)
    desk.goto(f"{live_url}/counter/login?lang=zh")
    desk.fill("#username", username)
    desk.fill("#password", PASSWORD)
    desk.click("#login")
    assert desk.path == "/counter" and "TIANHE-1" in desk.text()
    desk.type("#qr", qr_text)
    desk.screenshot(artifacts / "identity-counter-console-zh.png")
    desk.click("#check")
    assert desk.path.startswith("/counter/visits/vis_")
    visit_url = desk.path
    assert desk.text("#applicant-name") == "林八" and desk.text("#visit-acr") == "pwd+totp"
    assert "申请人已同意" in desk.text("#consent-state")
    desk.fill("#doc_number", id_number)
    desk.click("#record-check")
    assert desk.text("#visit-acr") == "in-person" and desk.text("#applicant-assurance") == "in-person"
    desk.click("#view-licences")
    assert desk.js("document.querySelectorAll('#visit-licences tr').length") == 2  # header + the licence
    desk.screenshot(artifacts / "identity-counter-visit-zh.png")
    desk.click("#end-visit")
    assert desk.path == "/counter"
    desk.goto(f"{live_url}{visit_url.split('?')[0]}?show=1&lang=en")
    assert "The visit has ended" in desk.text("#error") or "ended" in desk.text()

    # the same QR again (a replay) is refused
    desk.goto(f"{live_url}/counter")
    desk.type("#qr", qr_text)
    desk.click("#check")
    assert "already used" in desk.text("#error")

    # --- an applicant without a phone: the document checked in person finds the account
    with session_scope(engine) as session:
        accounts.register_person(session, pii, name="周九", id_number=walk_in_id, phone=phone_number(), password=PASSWORD,
                                 now=dt.datetime.now(dt.timezone.utc))
    desk.goto(f"{live_url}/counter?lang=en")
    desk.fill("#walkin_number", walk_in_id)
    desk.click("#walk-in")
    assert desk.text("#applicant-name") == "周九" and desk.text("#visit-acr") == "in-person"
    desk.click("#record-consent")
    assert desk.js("document.querySelectorAll('#visit-licences tr').length") == 2
    desk.screenshot(artifacts / "identity-counter-walk-in-en.png")

    # the citizen's session cannot open the counter, nor the staff session the portal
    phone.goto(f"{live_url}/counter")
    assert phone.path == "/counter/login"
    desk.goto(f"{live_url}/portal")
    assert desk.path.startswith("/portal/login")

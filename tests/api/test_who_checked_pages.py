"""Who checked my licences and my consents in headless Chromium on a phone: the history after a counter read,
the OpenID Connect consent screen, granting, and revoking in the portal (with screenshots)."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from urllib.parse import urlencode

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.engine import Engine

from certificates.holders import PiiVault
from certificates.issuance import Actor, Issuer
from certificates.models import LicenceType
from ecert.db import session_scope
from identity import counter, oidc
from tests.api.test_identity_pages import browser  # noqa: F401 - Chromium
from tests.api.test_who_checked import _holder
from tests.certificates.conftest import actor, department, issuer, licence_type, request_for, seal_keys  # noqa: F401
from tests.support.browser import CHROMIUM, Browser, Page
from tests.identity.conftest import PASSWORD, pii  # noqa: F401
from tests.identity.test_counter import make_staff

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/install-system-tools.sh")


def _fits(page: Page) -> bool:
    return bool(page.js("document.documentElement.scrollWidth <= window.innerWidth"))


def test_history_consent_screen_and_revocation_on_a_phone(
    browser: Browser, live_url: str, engine: Engine, pii: PiiVault, issuer: Issuer, actor: Actor,  # noqa: F811
    department: str, licence_type: LicenceType, artifacts: Path,  # noqa: F811
) -> None:
    holder = _holder(engine, pii, issuer, actor, department, "周十三")
    _, staff = make_staff(engine, pii, hall="PANYU-3")
    now = dt.datetime.now(dt.timezone.utc)
    with session_scope(engine) as session:
        visit = counter.start_visit_by_document(session, pii, staff, document_type="resident-id",
                                                document_number=holder.id_number, now=now)
        counter.record_consent(session, visit.id, staff, now=now)
        counter.visit_licences(session, visit.id, staff, purpose="eligibility", now=now)
        party = oidc.register_relying_party(session, name="招聘平台 Jobs", redirect_uris=[f"{live_url}/healthz"],
                                            scopes=["openid", "licences:own"], purpose="employment", actor="test", now=now)

    phone = browser.page(390, 844, mobile=True)
    phone.goto(f"{live_url}/portal/login?lang=zh")
    phone.fill("#login_name", holder.id_number)
    phone.fill("#password", PASSWORD)
    phone.click("#login")
    phone.click("#who-checked")
    assert phone.path == "/portal/checks"
    row = phone.text("#checks")
    assert "PANYU-3" in row and "窗口工作人员" in row and "资格审核" in row and holder.number in row
    assert holder.id_number not in phone.text() and _fits(phone)
    phone.screenshot(artifacts / "who-checked-zh.png")

    params = {"client_id": party.party.client_id, "redirect_uri": f"{live_url}/healthz", "response_type": "code",
              "scope": "openid licences:own", "state": "s", "code_challenge_method": "S256",
              "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)), "lang": "en"}
    phone.goto(f"{live_url}/oauth/authorize?{urlencode(params)}")
    assert phone.text("#app-name") == "招聘平台 Jobs" and "Read your own e-licences" in phone.text("#scopes")
    assert "Employment or practice check" in phone.text("#purpose") and _fits(phone)
    phone.screenshot(artifacts / "consent-screen-en.png")
    phone.click("#allow")
    assert phone.path.startswith("/healthz?code=")

    phone.goto(f"{live_url}/portal/consents?lang=en")
    assert "招聘平台 Jobs" in phone.text("#consents") and _fits(phone)
    phone.screenshot(artifacts / "my-consents-en.png")
    phone.click("#consents button")
    assert phone.path == "/portal/consents" and "Revoked" in phone.text("#consents")

"""Enterprise agents on a phone (headless Chromium, 390 px): the enterprise adds and removes an agent, the agent
opens the enterprise's e-licences; no page scrolls sideways; screenshots as artefacts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from certificates.holders import PiiVault
from certificates.issuance import Actor, Issuer
from certificates.models import LicenceType
from ecert.db import session_scope
from identity import accounts
from tests.api.test_identity_pages import browser  # noqa: F401 - the shared Chromium
from tests.certificates.conftest import actor, department, issuer, licence_type, request_for, seal_keys  # noqa: F401
from tests.support.browser import CHROMIUM, Browser, Page
from tests.identity.conftest import PASSWORD, person_id, phone_number, pii, uscc  # noqa: F401

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/install-system-tools.sh")


def _log_in(page: Page, live_url: str, login_name: str, lang: str) -> None:
    page.goto(f"{live_url}/portal/login?lang={lang}")
    page.fill("#login_name", login_name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    assert page.path == "/portal"


def _fits(page: Page) -> bool:
    return bool(page.js("document.documentElement.scrollWidth <= window.innerWidth"))


def test_agents_on_a_phone(browser: Browser, live_url: str, engine: Engine, pii: PiiVault, issuer: Issuer,  # noqa: F811
                           actor: Actor, department: str, licence_type: LicenceType, artifacts: Path) -> None:  # noqa: F811
    credit_code, agent_id = uscc(), person_id()
    now = dt.datetime.now(dt.timezone.utc)
    with session_scope(engine) as session:
        accounts.register_enterprise(session, pii, name="广州代办示例有限公司", credit_code=credit_code, legal_representative="陈法人",
                                     phone=phone_number(), password=PASSWORD, now=now)
        accounts.register_person(session, pii, name="黄经办", id_number=agent_id, phone=phone_number(), password=PASSWORD,
                                 now=now)
        issuer.issue_one(session, actor, issuer.prepare(session, actor, department, request_for(
            holder_kind="enterprise", holder_name="广州代办示例有限公司", holder_id=credit_code)))

    enterprise = browser.page(390, 844, mobile=True)
    _log_in(enterprise, live_url, credit_code, "zh")
    enterprise.click("#manage-agents")
    assert enterprise.path == "/portal/agents" and "暂无经办人" in enterprise.text()
    enterprise.fill("#person", agent_id)
    enterprise.click("#add-agent")
    assert "黄经办" in enterprise.text("#agents") and agent_id not in enterprise.text()
    assert _fits(enterprise)
    enterprise.screenshot(artifacts / "identity-agents-zh.png")

    agent = browser.page(390, 844, mobile=True)
    _log_in(agent, live_url, agent_id, "en")
    agent.click("#acting")
    assert "广州代办示例有限公司" in agent.text("#enterprises")
    agent.click("#enterprises a")
    assert agent.text("#enterprise-name") == "广州代办示例有限公司"
    assert agent.js("document.querySelectorAll('#licences tr').length") == 1
    assert "read-only" in agent.text() and _fits(agent)
    agent.screenshot(artifacts / "identity-acting-en.png")

    enterprise.click("#agents button")  # remove
    assert "暂无经办人" in enterprise.text()
    agent.goto(agent.js("location.href"))  # the same page again: the enterprise is gone for them
    assert "No such enterprise you act for" in agent.text() or "no such enterprise" in agent.text()

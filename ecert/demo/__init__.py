"""The first-start demo: a department, a licence type, an API client and one sealed sample licence.

Runs once, on an empty database, when ``ECERT_DEMO`` is true (the default for development; set it
to false in production). A newcomer sees the whole flow in a minute: the API docs, the demo
client's credentials (printed once and kept in ``<data_dir>/demo.json``, mode 0600) and the
sample's verification link.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlmodel import Session, select

from ca.models import Department
from certificates.issuance import Actor, IssueRequest
from certificates.types import add_type, parse_type_spec
from certificates.views import licence_view
from ecert.db import session_scope
from ecert.container import Container
from identity.clients import create_client
from identity.scopes import DEPARTMENT_SCOPES

__all__ = ["DemoInfo", "seed_demo", "DEMO_DEPARTMENT"]

DEMO_DEPARTMENT = "DEMOAMR"
_SPEC = Path(__file__).with_name("business-licence.json")
_ACTOR = "system:demo"


@dataclass(frozen=True)
class DemoInfo:
    docs_url: str
    department: str
    client_id: str
    client_secret: str
    licence_number: str
    verification_link: str
    token_url: str

    def banner(self) -> str:
        return "\n".join([
            "ecert demo data (first start, ECERT_DEMO=true):",
            f"  API docs:           {self.docs_url}",
            f"  department:         {self.department}",
            f"  API client id:      {self.client_id}",
            f"  API client secret:  {self.client_secret}   (shown once; also in demo.json in the data directory)",
            f"  get a token:        curl -d grant_type=client_credentials -u {self.client_id}:<secret> {self.token_url}",
            f"  sample licence:     {self.licence_number}",
            f"  verify it:          {self.verification_link}",
        ])


def seed_demo(container: Container) -> DemoInfo | None:
    """Seed the demo on an empty database; None when any department already exists."""
    runtime = container.runtime
    with Session(runtime.engine) as session:
        if session.exec(select(Department).limit(1)).first() is not None:
            return None
    ca = container.ca
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        ca.add_department(session, DEMO_DEPARTMENT, "示例市市场监督管理局", name_en="Demo City Administration for Market Regulation",
                          actor=_ACTOR)
        add_type(session, department_code=DEMO_DEPARTMENT, spec=parse_type_spec(json.loads(_SPEC.read_text())),
                 actor=_ACTOR, now=now)
        client = create_client(session, name="demo department system", department=DEMO_DEPARTMENT,
                               scopes=list(DEPARTMENT_SCOPES), actor=_ACTOR, now=now)
    service = container.licences
    request = IssueRequest(
        type_code="BL", holder_kind="enterprise", holder_name="示例科技有限公司", holder_id="91440101MA59C2XK1J",
        fields={"company": "示例科技有限公司", "legal_representative": "张三", "capital": 1000000,
                "address": "示例市示例区示例路1号", "scope": "软件开发；信息技术咨询服务"},
        idempotency_key="demo-sample-licence",
    )
    with session_scope(runtime.engine) as session:
        licence, _ = service.issue(session, Actor(subject=_ACTOR, department=DEMO_DEPARTMENT), DEMO_DEPARTMENT, request)
        view = licence_view(licence, now=runtime.clock.now(), public_url=runtime.settings.public_url)
    base = runtime.settings.public_url.rstrip("/")
    info = DemoInfo(
        docs_url=f"{base}/docs", department=DEMO_DEPARTMENT, client_id=client.client.client_id, client_secret=client.secret,
        licence_number=licence.number, verification_link=view.get("verification_url") or f"{base}/v/{licence.token}",
        token_url=f"{base}/oauth/token",
    )
    path = runtime.settings.data_dir / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(info), handle, ensure_ascii=False, indent=2)
    return info

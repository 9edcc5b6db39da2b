"""The public verification routes over HTTP: page and JSON by token (and its shortcut), PDF upload, trust bundle,
rate limit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecert.ratelimit import TokenBuckets
from api.lookups import LookupShortcut
from ecert.clock import SystemClock
from ecert.db import make_engine, migrate
from ecert.runtime import Runtime
from tests.support import hostile
from tests.verify.conftest import Issued, authority, issued, sealer  # noqa: F401 - shared fixtures
from verify.batching import LookupBatcher
from verify.bundle import load_bundle
from verify.link import LinkVerifier, VerificationCounter
from verify.offline import verify_qr_offline




@pytest.mark.parametrize("name,outcome", [("valid", "valid"), ("revoked", "revoked"), ("suspended", "suspended"),
                                          ("expired", "expired"), ("old", "superseded"), ("current", "valid")])
def test_json_by_token(client: TestClient, issued: Issued, name: str, outcome: str) -> None:
    response = client.get(f"/api/v1/verify/{issued.token(name)}")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["outcome"] == outcome and body["licence"]["number"] == issued.licences[name].number
    assert body["outcome_text"]["zh"] and body["outcome_text"]["en"]
    assert "holder_id_cipher" not in response.text and issued.licences[name].holder_id_cipher not in response.text
    if name == "old":
        assert body["licence"]["superseded_by"].endswith(f"/v/{issued.token('current')}")
    if name == "revoked":
        assert body["licence"]["status_reason"] and [h["to"] for h in body["history"]] == ["valid", "revoked"]
    if name == "valid":
        assert body["transparency"]["logged"] and body["transparency"]["audit_path"] is not None


def test_not_found_is_404_in_json_and_html(client: TestClient) -> None:
    response = client.get("/api/v1/verify/AAAAAAAAAAAAAAAAAAAAAAAA")
    assert response.status_code == 404 and response.json()["outcome"] == "not_found"
    page = client.get("/v/AAAAAAAAAAAAAAAAAAAAAAAA?lang=en")
    assert page.status_code == 404 and "No such licence" in page.text and page.headers["content-type"].startswith("text/html")


def test_page_languages_and_content_negotiation(client: TestClient, issued: Issued) -> None:
    token = issued.token("revoked")
    zh = client.get(f"/v/{token}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert zh.status_code == 200 and "已吊销" in zh.text and 'lang="zh-CN"' in zh.text
    assert "default-src 'none'" in zh.headers["content-security-policy"] and zh.headers["referrer-policy"] == "no-referrer"
    en = client.get(f"/v/{token}", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert "Revoked" in en.text and 'lang="en"' in en.text
    assert "Revoked" in client.get(f"/v/{token}?lang=en", headers={"Accept-Language": "zh"}).text
    as_json = client.get(f"/v/{token}", headers={"Accept": "application/json"})
    assert as_json.json()["outcome"] == "revoked"
    old = client.get(f"/v/{issued.token('old')}?lang=en")
    assert f"/v/{issued.token('current')}" in old.text and 'id="current-version"' in old.text


def test_page_escapes_what_it_shows(client: TestClient) -> None:
    response = client.get("/v/<img src=x onerror=alert(1)>")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "<img src=x" not in response.text


def test_rate_limit(client: TestClient, swap: Any) -> None:
    verification = dataclasses.replace(client.app.state.container.verification, limiter=TokenBuckets(0.5, 6))
    swap(client.app, verification=verification)
    codes = [client.get(f"/api/v1/verify/{'B' * 24}").status_code for _ in range(3)]  # not found costs 5
    assert codes[0] == 404 and 429 in codes
    limited = client.get(f"/api/v1/verify/{'B' * 24}")
    assert limited.status_code == 429 and limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["type"] == "/problems/rate-limited"


def test_pdf_upload_raw_and_multipart(client: TestClient, issued: Issued) -> None:
    pdf = issued.pdfs["valid"]
    raw = client.post("/api/v1/verify/pdf", content=pdf, headers={"Content-Type": "application/pdf"})
    assert raw.status_code == 200 and raw.json()["outcome"] == "valid", raw.json()["failed"]
    form = client.post("/api/v1/verify/pdf", files={"file": ("licence.pdf", pdf, "application/pdf")})
    assert form.status_code == 200 and form.json()["outcome"] == "valid"
    revoked = client.post("/api/v1/verify/pdf", content=issued.pdfs["revoked"], headers={"Content-Type": "application/pdf"})
    assert revoked.json()["outcome"] == "revoked"


def test_pdf_upload_hostile_inputs_never_500(client: TestClient, issued: Issued, runtime: Runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pdf = issued.pdfs["valid"]
    cases = {
        "not_pdf": b"hello", "truncated": pdf[:5000], "encrypted": hostile.encrypted(pdf, tmp_path),
        "zip_bomb": hostile.zip_bomb(pdf), "unsigned": hostile.unsigned_licence(issued.licences["valid"]),
        "stranger": hostile.forged(hostile.unsigned_licence(issued.licences["valid"]), issued.department),
        "added_content": hostile.added_content(pdf), "flipped": hostile.flipped(pdf),
    }
    for name, data in cases.items():
        response = client.post("/api/v1/verify/pdf", content=data, headers={"Content-Type": "application/pdf"})
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        unread = name in ("not_pdf", "truncated", "encrypted", "zip_bomb")  # "cannot be checked", not "forged or altered"
        assert body["outcome"] == ("unreadable" if unread else "invalid") and body["failed"], name
        assert all(c["reason"]["en"] and c["reason"]["zh"] for c in body["checks"] if not c["passed"]), name
    too_big = client.post("/api/v1/verify/pdf", content=b"%PDF-" + b"0" * (runtime.settings.max_upload_bytes + 70_000),
                          headers={"Content-Type": "application/pdf"})
    assert too_big.status_code == 413 and too_big.headers["content-type"] == "application/problem+json"
    wrong_type = client.post("/api/v1/verify/pdf", content=pdf, headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    no_file = client.post("/api/v1/verify/pdf", files={"other": ("x.pdf", pdf, "application/pdf")})
    assert no_file.status_code == 422


def test_trust_bundle_route(client: TestClient, issued: Issued) -> None:
    response = client.get("/api/v1/trust-bundle")
    assert response.status_code == 200 and "max-age" in response.headers["cache-control"]
    bundle = load_bundle(response.content)
    verdict = verify_qr_offline(issued.licences["valid"].qr_payload or "", bundle, now=bundle.issued_at)
    assert verdict.outcome.value == "valid"  # the bundle's status lists say so
    assert json.loads(response.content)["bundle"]["issuer"]
    assert bundle.token_keys and all(key["kid"].startswith("token-signing-v") for key in bundle.token_keys["keys"])


def _without_time(response: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = response.json()
    body.pop("checked_at")
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, body, headers


@pytest.mark.parametrize("name", ["valid", "revoked", "old", None])
def test_an_anonymous_lookup_takes_the_shortcut_and_gets_what_the_route_sends(client: TestClient, issued: Issued,
                                                                               name: str | None) -> None:
    """LookupShortcut answers anonymous JSON lookups before the router; a query string sends the same lookup through
    the route (verify_token). Both answers are the same, but for the time of the check."""
    token = issued.token(name) if name else "C" * 24
    routed = []
    inner = client.app.middleware_stack  # type: ignore[attr-defined]
    shortcut = inner
    while not isinstance(shortcut, LookupShortcut):
        shortcut = shortcut.app
    passed_on, shortcut.app = shortcut.app, None

    async def noted(scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await passed_on(scope, receive, send)

    shortcut.app = noted
    try:
        direct = client.get(f"/api/v1/verify/{token}")
        assert routed == [], "answered by the shortcut"
        via_route = client.get(f"/api/v1/verify/{token}?purpose=")
        assert routed == [f"/api/v1/verify/{token}"]
    finally:
        shortcut.app = passed_on
    assert _without_time(direct) == _without_time(via_route)
    assert direct.status_code == (200 if name else 404) and direct.headers["x-request-id"]
    assert direct.json()["checked_at"] and direct.headers["content-length"] == str(len(direct.content))


def test_a_lookup_that_fails_in_the_shortcut_is_answered_by_the_route(client: TestClient, swap: Any, tmp_path: Path) -> None:
    """The register is gone (its database file moved away): the route reads again and answers with its problem."""
    engine = make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    migrate(engine)
    broken = LinkVerifier(engine, SystemClock(), public_url="https://ecert.example",
                          counter=VerificationCounter(engine, SystemClock(), every_seconds=3600))
    verification = dataclasses.replace(client.app.state.container.verification, link=broken, lookups=LookupBatcher(broken))
    swap(client.app, verification=verification)
    engine.dispose()
    (tmp_path / "register.db").rename(tmp_path / "away.db")  # a new, empty file takes its place
    response = client.get(f"/api/v1/verify/{'D' * 24}")
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] and response.json()["type"] == "/problems/database-unavailable"

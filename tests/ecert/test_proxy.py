"""The shipped nginx config (deploy/nginx.conf, templated to loopback ports) in front of a real ``ecert serve``
running with the shipped FORWARDED_ALLOW_IPS: a client that sends its own X-Forwarded-For gains nothing.

Loopback has a whole /8, so real clients with different addresses are sockets bound to 127.0.0.2, 127.0.0.3...
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from bench.harness import Server, start_server
from keys.openbao import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROXY = "127.0.0.1"  # where nginx connects from: the lb's address in the templated deployment
VERIFY_BURST = 5  # ecert's per-IP bucket for public lookups, below nginx's own burst so ecert's limit shows


def _shipped_trust(proxy: str) -> str:
    """compose.yaml's FORWARDED_ALLOW_IPS with the load balancer's address replaced by the test proxy's."""
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    lb_address = services["lb"]["networks"]["edge"]["ipv4_address"]
    trusted = str(services["ecert-1"]["environment"]["FORWARDED_ALLOW_IPS"])
    assert lb_address in trusted
    return trusted.replace(lb_address, proxy)


def _templated_nginx(directory: Path, upstream: int, listen: int) -> Path:
    """deploy/nginx.conf with loopback ports and writable paths; nothing else changed."""
    text = (DEPLOY / "nginx.conf").read_text()
    text, upstreams = re.subn(r"server ecert-\d:8000", f"server 127.0.0.1:{upstream}", text)
    text, listens = re.subn(r"listen 8080;", f"listen 127.0.0.1:{listen};", text)
    paths = "".join(f"  {kind}_temp_path {directory / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text, https = re.subn(r"^http \{\n", "http {\n" + paths + f"  access_log {directory / 'access.log'};\n", text, flags=re.MULTILINE)
    assert (upstreams, listens, https) == (2, 1, 1), "deploy/nginx.conf changed shape: update this template"
    config = directory / "nginx.conf"
    config.write_text(text)
    return config


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "data", f"sqlite:///{tmp_path}/ecert.db", workers=1, extra_env={
        "FORWARDED_ALLOW_IPS": _shipped_trust(PROXY),
        "ECERT_VERIFY_RATE_PER_SECOND": "0.001", "ECERT_VERIFY_BURST": str(VERIFY_BURST),
        "ECERT_LOGIN_RATE_PER_SECOND": "1000", "ECERT_LOGIN_BURST": "1000",  # here nginx's login limit is the one tested
    })
    yield server
    server.stop()


@pytest.fixture
def nginx(tmp_path: Path, served: Server) -> Iterator[str]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    directory = tmp_path / "nginx"
    directory.mkdir()
    port = free_port()
    config = _templated_nginx(directory, urlsplit(served.base).port or 0, port)
    process = subprocess.Popen([binary, "-p", str(directory), "-c", str(config), "-g",
                                f"daemon off; pid {directory / 'nginx.pid'}; error_log {directory / 'error.log'};"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (process.stdout.read() if process.stdout else b"").decode()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client_at(address: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (a distinct real client on loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_a_spoofed_forwarded_for_does_not_escape_the_per_ip_verification_limit(nginx: str, served: Server) -> None:
    link = urlsplit(served.demo["verification_link"]).path
    statuses, kinds = [], []
    with _client_at("127.0.0.2") as attacker:
        for n in range(4 * VERIFY_BURST):
            spoofed = f"198.51.100.{n}"  # a new address claimed on every request
            answer = attacker.get(f"{nginx}{link}", headers={"X-Forwarded-For": spoofed, "X-Real-IP": spoofed,
                                                             "Forwarded": f"for={spoofed}"})
            statuses.append(answer.status_code)
            kinds.append(answer.headers.get("content-type", ""))
    first_refused = statuses.index(429)  # the limit bites...
    assert 0 < first_refused <= VERIFY_BURST and set(statuses[:first_refused]) == {200}, statuses
    assert set(statuses[first_refused:]) == {429}, statuses  # ...and no claimed address gets past it
    assert all(kind.startswith("application/problem+json") for kind in kinds[first_refused:])  # ecert's, not nginx's
    with _client_at("127.0.0.3") as neighbour:  # another real client: its own bucket, so addresses do get through
        assert neighbour.get(f"{nginx}{link}").status_code == 200


def test_nginx_limits_sign_in_attempts_per_client_whatever_it_claims(nginx: str) -> None:
    with _client_at("127.0.0.4") as attacker:
        answers = [attacker.post(f"{nginx}/portal/login", data={"login_name": f"nobody{n}", "password": "guess"},
                                 headers={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(20)]
        statuses = [a.status_code for a in answers]
        assert attacker.get(f"{nginx}/portal/login").status_code == 200  # the form itself still loads
    refused = [a for a in answers if a.status_code == 429]
    assert 429 not in statuses[:11] and len(refused) >= 5, statuses  # burst 10, then one per 2 s (30 a minute)
    assert all("429 Too Many Requests" in a.text for a in refused)  # nginx's own answer: ecert never saw them

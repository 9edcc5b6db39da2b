"""The shipped deployment files parse and agree with the code: settings names, routes, services, packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecert.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _k8s() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "ecert.yaml").read_text()) if d]


def _nginx() -> str:
    """deploy/nginx.conf without its comments."""
    return re.sub(r"#[^\n]*", "", (DEPLOY / "nginx.conf").read_text())


def _interpolate(value: str) -> str:
    return re.sub(r"\$\{(\w+)(:\?[^}]*)?\}", lambda m: f"x{m.group(1).lower()}", value)


def _check_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in list(__import__("os").environ) if k.startswith("ECERT_") or k.startswith("VAULT_")]:
        monkeypatch.delenv(key)
    unknown = [k for k in env if k.startswith("ECERT_") and k[6:].lower() not in Settings.model_fields]
    assert not unknown, unknown
    for key, value in env.items():
        monkeypatch.setenv(key, _interpolate(str(value)))
    return load_settings()  # production validation: PostgreSQL, external Vault with AppRole


def test_compose_replicas_load_as_production_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = _compose()
    services = compose["services"]
    assert {"ecert-1", "ecert-2", "lb", "postgres", "postgres-replica", "openbao-1", "openbao-2", "openbao-3"} <= set(services)
    env = {**services["ecert-1"]["environment"], "ECERT_VAULT_SECRET_ID": "s"}
    settings = _check_env(env, monkeypatch)
    assert settings.environment == "production" and settings.workers == 2 and not settings.demo
    assert settings.database_url and settings.database_url.startswith("postgresql+psycopg://")
    assert services["ecert-2"]["environment"] == services["ecert-1"]["environment"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    upstreams = re.findall(r"server (ecert-\d):8000", (DEPLOY / "nginx.conf").read_text())
    assert sorted(upstreams) == ["ecert-1", "ecert-2"]


def test_openbao_nodes_form_one_raft_cluster() -> None:
    nodes = {n: (DEPLOY / "openbao" / f).read_text() for n, f in ((1, "config.hcl"), (2, "node-2.hcl"), (3, "node-3.hcl"))}
    for n, text in nodes.items():
        assert f'node_id = "openbao-{n}"' in text and f'api_addr      = "http://openbao-{n}:8200"' in text
        joins = set(re.findall(r'leader_api_addr = "http://openbao-(\d):8200"', text))
        assert joins == {str(m) for m in (1, 2, 3) if m != n}
        assert 'storage "raft"' in text


def test_kubernetes_manifests_fit_together(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s()}
    assert {k for k, _ in docs} >= {"ConfigMap", "Job", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    deployment = docs[("Deployment", "ecert")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert docs[("Service", "ecert")]["spec"]["selector"] == labels
    assert docs[("PodDisruptionBudget", "ecert")]["spec"]["selector"]["matchLabels"] == labels
    assert docs[("HorizontalPodAutoscaler", "ecert")]["spec"]["scaleTargetRef"]["name"] == "ecert"
    assert docs[("HorizontalPodAutoscaler", "ecert")]["spec"]["minReplicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    from api.routes.health import router

    paths = {route.path for route in router.routes}  # type: ignore[attr-defined]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in paths
    env = {**docs[("ConfigMap", "ecert")]["data"], "ECERT_DATABASE_URL": "postgresql+psycopg://ecert@db/ecert",
           "ECERT_VAULT_ROLE_ID": "r", "ECERT_VAULT_SECRET_ID": "s"}
    assert _check_env(env, monkeypatch).environment == "production"


def test_container_image_installs_every_package() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    packages = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \1$", text, re.M))
    assert {p.rstrip("*") for p in packages} == copied
    assert "ECERT_ENVIRONMENT=production" in text and "USER ecert" in text
    assert '--wheel-dir /wheels ".[s3]"' in text  # ECERT_BLOB_STORE=s3 works in the image


def test_the_app_trusts_only_the_proxys_address_header() -> None:
    """nginx sets X-Forwarded-For to the peer it sees; the replicas believe it from the proxy's address only."""
    nginx = _nginx()
    assert "$proxy_add_x_forwarded_for" not in nginx  # appending lets the client choose its address
    assert re.search(r"proxy_set_header X-Forwarded-For \$remote_addr;", nginx)
    assert nginx.count("proxy_set_header") == len(re.findall(r"^  proxy_set_header", nginx, re.M))  # http level: every location
    services = _compose()["services"]
    lb_address = services["lb"]["networks"]["edge"]["ipv4_address"]
    for name in ("ecert-1", "ecert-2", "migrate"):
        assert services[name]["environment"]["FORWARDED_ALLOW_IPS"] == lb_address
        assert "edge" in services[name]["networks"]
    k8s = {(d["kind"], d["metadata"]["name"]): d for d in _k8s()}
    trusted = k8s[("ConfigMap", "ecert")]["data"]["FORWARDED_ALLOW_IPS"]
    assert trusted != "*" and "/" in trusted
    policy = k8s[("NetworkPolicy", "ecert")]["spec"]
    assert policy["podSelector"]["matchLabels"] == k8s[("Deployment", "ecert")]["spec"]["template"]["metadata"]["labels"]


def test_nginx_limits_sign_in_registration_and_tokens() -> None:
    nginx = _nginx()
    locations = dict(re.findall(r"location (~ [^{]+?) \{(.*?)\}", nginx, re.S))
    zones = {pattern: re.search(r"limit_req zone=(\w+)", body).group(1)  # type: ignore[union-attr]
             for pattern, body in locations.items() if "limit_req" in body}
    paths = {"/portal/login": "login", "/portal/register": "login", "/counter/login": "login", "/oauth/token": "token",
             "/v/abc": "verify", "/api/v1/verify/pdf": "verify"}
    for path, zone in paths.items():
        matching = [z for pattern, z in zones.items() if re.search(pattern[2:], path)]
        assert matching == [zone], (path, matching)
    assert "limit_req_status 429;" in nginx

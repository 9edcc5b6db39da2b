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

"""The import-linter layers contract names every package and every module of the kernel, so none escapes it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _layered() -> set[str]:
    [layers] = [c["layers"] for c in _config()["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}


def test_every_package_is_in_a_layer() -> None:
    packages = set(_config()["tool"]["importlinter"]["root_packages"])
    assert packages - {"ecert"} <= _layered()


def test_every_module_of_the_kernel_and_application_is_in_a_layer() -> None:
    modules = {f"ecert.{p.stem}" for p in (ROOT / "ecert").glob("*.py") if p.stem != "__init__"}
    modules |= {f"ecert.{p.name}" for p in (ROOT / "ecert").iterdir() if (p / "__init__.py").exists()}
    assert modules - _layered() == set()


def test_no_domain_package_imports_the_composition_root() -> None:
    """The layers say so; this names the mistake the contract was written against (ca importing the runtime)."""
    for package in ("keys", "audit", "ca", "certificates", "signing", "verify", "identity"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(from|import) ecert\.(runtime|container|cli|commands|demo)\b", text, re.M), path

"""The public transparency API, the independent checker (over real HTTP and from a directory) and the CLI."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from audit import checker, merkle, tlog
from audit.tlog import append_leaf
from audit.treehead import TreeHead
from ecert.clock import SystemClock
from ecert.db import session_scope
from ecert.runtime import Runtime
from ecert.settings import Settings
from keys import TransitKeyStore
from keys.openbao import free_port
from tests.support.cli import run_cli as _cli
from tests.support.services import services_for


def _grow(engine: Engine, keystore: TransitKeyStore, uid: str, count: int) -> TreeHead:
    with session_scope(engine) as session:
        for i in range(count):
            append_leaf(session, cert_digest=hashlib.sha256(f"{uid}/{i}".encode()).digest(),
                        licence_number=f"API-{uid}-{i}", kind="issued", at=SystemClock().now())
    head = tlog.sign_tree_head(engine, keystore, SystemClock())
    assert head is not None
    return head


def test_sth_and_proofs_over_the_api(client: TestClient, runtime: Runtime, uid: str) -> None:
    _grow(runtime.engine, runtime.keystore, uid, 5)
    first = client.get("/transparency/sth").json()
    head = _grow(runtime.engine, runtime.keystore, uid + "b", 20)
    sth = client.get("/transparency/sth").json()
    assert sth == head.to_json() == client.get(f"/transparency/sth/{head.tree_size}").json()
    keys = client.get("/transparency/public-key").json()["versions"]
    key = serialization.load_pem_public_key(keys[str(sth["key_version"])]["public_key_pem"].encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    root = base64.b64decode(sth["sha256_root_hash"])
    key.verify(base64.b64decode(sth["tree_head_signature"]), hashlib.sha256(TreeHead.from_json(sth).data()).digest(),
               ec.ECDSA(Prehashed(hashes.SHA256())))
    leaf = hashlib.sha256(b"\x00" + base64.b64decode(
        client.get("/transparency/entries", params={"start": head.tree_size - 3, "end": head.tree_size - 2}).json()
        ["entries"][0]["entry"])).digest()
    for params in ({"leaf_hash": base64.b64encode(leaf).decode()}, {"leaf_hash": leaf.hex()},
                   {"leaf_index": head.tree_size - 3, "tree_size": head.tree_size}):
        proof = client.get("/transparency/proof/inclusion", params=params).json()
        assert proof["leaf_index"] == head.tree_size - 3 and proof["tree_size"] == head.tree_size
        merkle.verify_inclusion(proof["leaf_index"], proof["tree_size"], leaf,
                                [base64.b64decode(h) for h in proof["audit_path"]], root)
    consistency = client.get("/transparency/proof/consistency",
                             params={"first": first["tree_size"], "second": head.tree_size}).json()
    merkle.verify_consistency(first["tree_size"], head.tree_size, base64.b64decode(first["sha256_root_hash"]), root,
                              [base64.b64decode(h) for h in consistency["consistency"]])


@pytest.mark.parametrize(("path", "params", "status", "slug"), [
    ("/transparency/sth/999999999", {}, 404, "tree-head-not-found"),
    ("/transparency/proof/inclusion", {"leaf_hash": "zz"}, 422, "invalid-input"),
    ("/transparency/proof/inclusion", {}, 422, "invalid-input"),
    ("/transparency/proof/inclusion", {"leaf_hash": "00" * 32}, 404, "leaf-not-found"),
    ("/transparency/proof/inclusion", {"leaf_index": 0, "tree_size": 10**12}, 422, "tree-size-out-of-range"),
    ("/transparency/proof/consistency", {"first": 5, "second": 2}, 422, "invalid-input"),
    ("/transparency/proof/consistency", {"first": "x", "second": 2}, 422, "validation-error"),
    ("/transparency/entries", {"start": 5, "end": 5000}, 422, "invalid-input"),
])
def test_bad_requests_are_problems(client: TestClient, runtime: Runtime, uid: str, path: str, params: dict,
                                   status: int, slug: str) -> None:
    _grow(runtime.engine, runtime.keystore, uid, 1)
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"/problems/{slug}"


@pytest.fixture
def live_url(runtime: Runtime) -> Iterator[str]:
    """The real app served over HTTP on loopback, for the checker's URL mode."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services_for(runtime)), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_checker_over_http_and_from_a_saved_directory(live_url: str, runtime: Runtime, settings: Settings,
                                                      tmp_path: Path, uid: str) -> None:
    for n in range(3):
        _grow(runtime.engine, runtime.keystore, f"{uid}{n}", 4 + 7 * n)
    with Session(runtime.engine) as session:
        mine = tlog.entries(session, start=tlog.tree_size(session) - 3, end=tlog.tree_size(session))
    saved = tmp_path / "heads"
    out = _cli(settings, runtime.engine, "transparency", "audit", live_url, "--save", str(saved), "--json",
               *[a for e in mine for a in ("--leaf", e.leaf_hash.hex())])
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["heads"] >= 3 and not report["findings"]
    never_logged = hashlib.sha256(b"never logged").hexdigest()
    out = _cli(settings, runtime.engine, "transparency", "audit", live_url, "--json", "--leaf", never_logged)
    assert out.returncode == 1 and [f["kind"] for f in json.loads(out.stdout)["findings"]] == ["inclusion"]
    offline = checker.audit_series(checker.load_series(saved))
    assert offline.ok and offline.largest is not None and offline.largest.tree_size == report["largest"]["tree_size"]

    # Tampering with a saved head: a changed root no longer carries the log's signature.
    victim = sorted(saved.glob("sth-*.json"), key=lambda p: int(p.stem.split("-")[1]))[-2]
    data = json.loads(victim.read_text())
    data["sha256_root_hash"] = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    victim.write_text(json.dumps(data))
    out = _cli(settings, runtime.engine, "transparency", "audit", str(saved), "--json")
    assert out.returncode == 1
    assert [f["kind"] for f in json.loads(out.stdout)["findings"]][:1] == ["signature"]


def test_checker_catches_a_forked_or_rewritten_log(runtime: Runtime, uid: str) -> None:
    """A log that signs a head whose tree does not extend the earlier one (rewritten history)."""
    first = _grow(runtime.engine, runtime.keystore, uid, 3)
    second = _grow(runtime.engine, runtime.keystore, uid + "x", 5)
    pem = tlog.log_public_keys(runtime.keystore)
    series = checker.Series(pem, [first, second], {})
    with Session(runtime.engine) as session:
        series.proofs[(first.tree_size, second.tree_size)] = list(
            tlog.consistency_proof(session, first=first.tree_size, second=second.tree_size).path)
    assert checker.audit_series(series).ok
    # The operator re-signs a different history of the first size with the real key (a fork).
    fake_root = hashlib.sha256(b"rewritten").digest()
    forged = TreeHead(first.tree_size, fake_root, first.timestamp, first.key_name, first.key_version,
                      runtime.keystore.sign(tlog.KeyRef(first.key_name, first.key_version),
                                            hashlib.sha256(TreeHead(first.tree_size, fake_root, first.timestamp, "", 0, b"").data()).digest()).value)
    report = checker.audit_series(checker.Series(pem, [first, forged, second], series.proofs))
    assert not report.ok and {f.kind for f in report.findings} == {"fork"}
    report = checker.audit_series(checker.Series(pem, [forged, second], series.proofs))
    assert [f.kind for f in report.findings] == ["consistency"]
    # A head signed by someone else's key (a throwaway forger key) is rejected.
    forger = ec.generate_private_key(ec.SECP256R1())
    fake = TreeHead(second.tree_size + 1, fake_root, second.timestamp, second.key_name, second.key_version,
                    forger.sign(hashlib.sha256(TreeHead(second.tree_size + 1, fake_root, second.timestamp, "", 0, b"").data()).digest(),
                                ec.ECDSA(Prehashed(hashes.SHA256()))))
    assert [f.kind for f in checker.audit_series(checker.Series(pem, [first, second, fake], series.proofs)).findings] == ["signature"]


def test_cli_audit_verify_and_checkpoint(runtime: Runtime, settings: Settings, tmp_path: Path, uid: str) -> None:
    from audit import record_event

    with session_scope(runtime.engine) as session:
        record_event(session, action="test.cli", actor="system", target=f"t:{uid}")
    out = _cli(settings, runtime.engine, "audit", "checkpoint", "--json")
    assert out.returncode == 0, out.stderr
    anchor = tmp_path / "anchor.json"
    anchor.write_text(out.stdout)
    out = _cli(settings, runtime.engine, "audit", "verify", "--anchor", str(anchor), "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    report = json.loads(out.stdout)
    assert report["ok"] and report["first_bad_seq"] is None and report["checkpoints"] >= 1


def test_cli_stats_csv(runtime: Runtime, settings: Settings, uid: str) -> None:
    from audit import record_event

    with session_scope(runtime.engine) as session:
        record_event(session, action="certificates.licence.issue", actor="x", department=f"c{uid}",
                     details={"type": "CLI/1"}, at=dt.datetime(2028, 2, 29, 12, tzinfo=dt.timezone.utc))
    out = _cli(settings, runtime.engine, "stats", "export", "--from", "2028-02-29", "--to", "2028-02-29", "--department",
               f"c{uid}", "--csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["day,department,metric,dimension,count",
                                       f"2028-02-29,c{uid},certificates.licence.issue,CLI/1,1"]
    assert _cli(settings, runtime.engine, "stats", "export", "--from", "yesterday", "--to", "2028-01-01").returncode == 2

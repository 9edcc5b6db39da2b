"""An independent auditor of the transparency log: signed tree heads and the consistency between them.

No database, no Vault, no ecert settings: only :mod:`audit.merkle`, :mod:`audit.treehead`,
``cryptography`` and ``urllib``. It reads a *series* of signed tree heads, either from a live
ecert (``https://host``, using its public ``/transparency`` API) or from a directory saved
earlier (:func:`save_series`)::

    public-key.json               the /transparency/public-key document
    sth-<tree_size>.json          one signed tree head each
    consistency-<a>-<b>.json      the /transparency/proof/consistency document from a to b

and checks that every head is signed by the log key, that sizes and timestamps only grow, that
one size never has two roots, and that each head is consistent with the one before it (so no
entry was removed or changed between them).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit import merkle
from audit.treehead import TreeHead, verify_tree_head

__all__ = ["Series", "Finding", "AuditReport", "fetch_series", "consistency_fetcher", "inclusion_fetcher", "check_leaf", "load_series", "save_series", "audit_series"]

Fetch = Callable[[str], Any]


@dataclass
class Series:
    public_keys: dict[int, str]  # key version -> PEM
    heads: list[TreeHead]
    proofs: dict[tuple[int, int], list[bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    tree_size: int
    kind: str  # signature | order | fork | consistency | missing-proof | inclusion
    detail: str


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    heads: int
    largest: TreeHead | None
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "heads": self.heads, "largest": self.largest.to_json() if self.largest else None,
            "findings": [f.__dict__ for f in self.findings],
        }


def _http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the operator names the log
        return json.loads(response.read())


def _pairs(heads: list[TreeHead]) -> list[tuple[int, int]]:
    sizes = sorted({h.tree_size for h in heads if h.tree_size > 0})
    return list(zip(sizes, sizes[1:]))


def fetch_series(base_url: str, *, fetch: Fetch = _http_json, limit: int = 1000) -> Series:
    """Download every signed tree head of a log and the consistency proofs between consecutive ones."""
    base = base_url.rstrip("/") + "/transparency"
    keys = {int(v): d["public_key_pem"] for v, d in fetch(f"{base}/public-key")["versions"].items()}
    heads: list[TreeHead] = []
    after = -1
    while True:
        page = fetch(f"{base}/sths?after={after}&limit={limit}")
        heads += [TreeHead.from_json(h) for h in page["tree_heads"]]
        if page.get("next_after") is None:
            break
        after = int(page["next_after"])
    get = consistency_fetcher(base_url, fetch=fetch)
    return Series(keys, heads, {(a, b): get(a, b) for a, b in _pairs(heads)})


def save_series(series: Series, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "public-key.json").write_text(json.dumps(
        {"versions": {str(v): {"public_key_pem": pem} for v, pem in series.public_keys.items()}}, indent=1))
    for head in series.heads:
        (directory / f"sth-{head.tree_size}.json").write_text(json.dumps(head.to_json(), indent=1))
    for (a, b), proof in series.proofs.items():
        (directory / f"consistency-{a}-{b}.json").write_text(json.dumps(
            {"first": a, "second": b, "consistency": [base64.b64encode(h).decode() for h in proof]}, indent=1))


def inclusion_fetcher(base_url: str, *, fetch: Fetch = _http_json) -> Callable[[bytes, int], tuple[int, list[bytes]]]:
    """(leaf index, audit path) of a leaf hash in the tree of a given size, from a live log."""
    base = base_url.rstrip("/") + "/transparency/proof/inclusion?"

    def get(leaf: bytes, tree_size: int) -> tuple[int, list[bytes]]:
        document = fetch(base + urllib.parse.urlencode({"leaf_hash": leaf.hex(), "tree_size": tree_size}))
        return int(document["leaf_index"]), [base64.b64decode(h) for h in document["audit_path"]]

    return get


def check_leaf(head: TreeHead, leaf: bytes, proof_source: Callable[[bytes, int], tuple[int, list[bytes]]]) -> Finding | None:
    """None if ``leaf`` is provably in the (already verified) tree ``head``, else a finding."""
    try:
        index, path = proof_source(leaf, head.tree_size)
        merkle.verify_inclusion(index, head.tree_size, leaf, path, head.root_hash)
    except merkle.ProofError as exc:
        return Finding(head.tree_size, "inclusion", f"leaf {leaf.hex()}: {exc}")
    except (OSError, ValueError, KeyError) as exc:
        return Finding(head.tree_size, "inclusion", f"leaf {leaf.hex()}: no proof ({exc})")
    return None


def load_series(directory: Path) -> Series:
    keys_file = directory / "public-key.json"
    keys = {}
    if keys_file.exists():
        keys = {int(v): d["public_key_pem"] for v, d in json.loads(keys_file.read_text())["versions"].items()}
    heads = [TreeHead.from_json(json.loads(p.read_text())) for p in sorted(directory.glob("sth-*.json"))]
    proofs = {}
    for path in directory.glob("consistency-*.json"):
        match = re.fullmatch(r"consistency-(\d+)-(\d+)\.json", path.name)
        if match:
            document = json.loads(path.read_text())
            proofs[(int(match[1]), int(match[2]))] = [base64.b64decode(h) for h in document["consistency"]]
    return Series(keys, heads, proofs)


def _key(pem: str) -> ec.EllipticCurvePublicKey | None:
    key = serialization.load_pem_public_key(pem.encode())
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def consistency_fetcher(base_url: str, *, fetch: Fetch = _http_json) -> Callable[[int, int], list[bytes]]:
    base = base_url.rstrip("/") + "/transparency/proof/consistency?"

    def get(first: int, second: int) -> list[bytes]:
        document = fetch(base + urllib.parse.urlencode({"first": first, "second": second}))
        return [base64.b64decode(h) for h in document["consistency"]]

    return get


def audit_series(
    series: Series, *, pinned_key_pem: str | None = None, more_proofs: Callable[[int, int], list[bytes]] | None = None
) -> AuditReport:
    """Check a series of heads; ``pinned_key_pem`` (held out of band) overrides the published keys.

    ``more_proofs`` fetches a consistency proof the series lacks (when a bad head was skipped).
    """
    findings: list[Finding] = []
    keys = {v: _key(pem) for v, pem in series.public_keys.items()}
    pinned = _key(pinned_key_pem) if pinned_key_pem else None
    good: list[TreeHead] = []
    for head in sorted(series.heads, key=lambda h: (h.tree_size, h.timestamp)):
        key = pinned or keys.get(head.key_version)
        if key is None or not verify_tree_head(head, key):
            findings.append(Finding(head.tree_size, "signature", f"the head of size {head.tree_size} is not signed by the log key"))
        else:
            good.append(head)
    by_size: dict[int, TreeHead] = {}
    for head in good:
        seen = by_size.setdefault(head.tree_size, head)
        if seen.root_hash != head.root_hash:
            findings.append(Finding(head.tree_size, "fork", f"two different signed roots for size {head.tree_size}"))
    ordered = [by_size[s] for s in sorted(by_size)]
    for older, newer in zip(ordered, ordered[1:]):
        if newer.timestamp < older.timestamp:
            findings.append(Finding(newer.tree_size, "order", f"head {newer.tree_size} is older than head {older.tree_size}"))
        if older.tree_size == 0:
            continue
        proof = series.proofs.get((older.tree_size, newer.tree_size))
        if proof is None and more_proofs is not None:
            proof = series.proofs[(older.tree_size, newer.tree_size)] = more_proofs(older.tree_size, newer.tree_size)
        if proof is None:
            findings.append(Finding(newer.tree_size, "missing-proof", f"no consistency proof {older.tree_size}->{newer.tree_size}"))
            continue
        try:
            merkle.verify_consistency(older.tree_size, newer.tree_size, older.root_hash, newer.root_hash, proof)
        except merkle.ProofError as exc:
            findings.append(Finding(newer.tree_size, "consistency", f"{older.tree_size}->{newer.tree_size}: {exc}"))
    largest = ordered[-1] if ordered else None
    return AuditReport(not findings, len(series.heads), largest, tuple(findings))

"""The public transparency log (RFC 9162 style): signed tree heads, inclusion and consistency proofs.

Everything here is public and read-only; hashes and signatures are base64 (as in RFC 6962's JSON
API). The background signer of tree heads and audit checkpoints
(:class:`audit.publisher.Publisher`) is started by the container.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import RuntimeDep, SessionDep
from api.problems import register_problem_type
from audit import tlog
from audit.treehead import log_id
from ecert.errors import InvalidInput

__all__ = ["router"]

for _error in (tlog.LeafNotFound, tlog.TreeHeadNotFound, tlog.TreeSizeOutOfRange):
    register_problem_type(_error.slug, _error.title, _error.title)


router = APIRouter(prefix="/transparency", tags=["transparency"])
_BIGINT = 2**63 - 1  # the database's integer range: larger numbers are refused with 422, not a 500


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _hash_param(value: str) -> bytes:
    """A 32-byte hash given as hex or base64 (standard or URL-safe; '+' may arrive as a space)."""
    text = value.strip().replace(" ", "+")
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise InvalidInput("leaf_hash must be a SHA-256 hash in hex or base64",
                           errors=[{"pointer": "query:/leaf_hash", "detail": "not a 32-byte hash"}])
    return raw


@router.get("/sth", summary="The latest signed tree head")
def latest_sth(session: SessionDep) -> dict[str, Any]:
    head = tlog.latest_tree_head(session)
    if head is None:
        raise tlog.TreeHeadNotFound("the transparency log has no signed tree head yet")
    return head.to_json()


@router.get("/sth/{tree_size}", summary="The signed tree head of one size")
def sth_at(tree_size: Annotated[int, Path(ge=0, le=_BIGINT)], session: SessionDep) -> dict[str, Any]:
    head = tlog.tree_head_at(session, tree_size)
    assert head is not None
    return head.to_json()


@router.get("/sths", summary="Signed tree heads in size order (for auditors)")
def sths(session: SessionDep, after: Annotated[int, Query(ge=-1, le=_BIGINT)] = -1,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    heads = tlog.tree_heads(session, after=after, limit=limit)
    return {"tree_heads": [h.to_json() for h in heads], "next_after": heads[-1].tree_size if len(heads) == limit else None}


@router.get("/public-key", summary="The log's public keys (every version) and log id")
def public_key(runtime: RuntimeDep) -> dict[str, Any]:
    keys = tlog.log_public_keys(runtime.keystore)
    return {
        "key_name": tlog.LOG_KEY,
        "algorithm": "ECDSA P-256 with SHA-256 over TreeHeadDataV2 (RFC 9162 4.10)",
        "versions": {str(v): {"public_key_pem": pem, "log_id": _b64(log_id(pem))} for v, pem in keys.items()},
    }


@router.get("/proof/inclusion", summary="Audit path of a leaf (by hash or index) in a signed tree")
def inclusion(
    session: SessionDep,
    leaf_hash: Annotated[str | None, Query(max_length=100)] = None,
    leaf_index: Annotated[int | None, Query(ge=0, le=_BIGINT)] = None,
    tree_size: Annotated[int | None, Query(ge=1, le=_BIGINT)] = None,
) -> dict[str, Any]:
    if (leaf_hash is None) == (leaf_index is None):
        raise InvalidInput("give exactly one of leaf_hash and leaf_index",
                           errors=[{"pointer": "query:/leaf_hash", "detail": "exactly one of leaf_hash, leaf_index"}])
    proof = tlog.inclusion_proof(session, leaf_hash=_hash_param(leaf_hash) if leaf_hash else None,
                                 leaf_index=leaf_index, tree_size=tree_size)
    return {
        "leaf_index": proof.leaf_index, "tree_size": proof.tree_size, "leaf_hash": _b64(proof.leaf_hash),
        "audit_path": [_b64(h) for h in proof.path],
        "tree_head": proof.tree_head.to_json() if proof.tree_head else None,
    }


@router.get("/proof/consistency", summary="Consistency proof between two tree sizes")
def consistency(session: SessionDep, first: Annotated[int, Query(ge=1, le=_BIGINT)], second: Annotated[int, Query(ge=1, le=_BIGINT)]) -> dict[str, Any]:
    proof = tlog.consistency_proof(session, first=first, second=second)
    return {"first": proof.first, "second": proof.second, "consistency": [_b64(h) for h in proof.path]}


@router.get("/entries", summary="Leaf entries [start, end) for monitors (at most 1000)")
def entries(session: SessionDep, start: Annotated[int, Query(ge=0, le=_BIGINT)], end: Annotated[int, Query(ge=1, le=_BIGINT)]) -> dict[str, Any]:
    if end <= start or end - start > 1000:
        raise InvalidInput("need start < end and at most 1000 entries",
                           errors=[{"pointer": "query:/end", "detail": "start < end <= start + 1000"}])
    return {"entries": [{"index": e.index, **e.entry.to_json()} for e in tlog.entries(session, start=start, end=end)]}

"""RFC 9162 / RFC 6962 Merkle math: published test vectors and a brute-force reference."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.merkle import ProofError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "transparency-dev-merkle.json").read_text())

# The classic RFC 6962 test tree (from the Certificate Transparency reference code, as kept in
# transparency-dev/merkle testonly/constants.go): 8 leaf inputs and the root of every prefix.
LEAF_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
LEAVES = [merkle.leaf_hash(d) for d in LEAF_INPUTS]


def _b(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def _range_hash(leaves: list[bytes], start: int, end: int) -> bytes:
    return merkle.fold([
        merkle.mth(leaves[i << level:(i + 1) << level]) for level, i in merkle.complete_subtrees(start, end)
    ])


def test_hashes_use_the_rfc_prefixes() -> None:
    assert merkle.leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert merkle.node_hash(b"N123", b"N456").hex() == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_roots_of_the_reference_tree() -> None:
    assert [merkle.mth(LEAVES[:n]) for n in range(9)] == ROOTS


@pytest.mark.parametrize("probe", VECTORS["inclusion"], ids=lambda p: p["file"].split("testdata/")[1])
def test_inclusion_vectors(probe: dict) -> None:
    args = (probe["leafIdx"], probe["treeSize"], base64.b64decode(probe["leafHash"] or ""), _b(probe["proof"]),
            base64.b64decode(probe["root"] or ""))
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


def _well_formed(probe: dict) -> bool:
    """We are stricter than the vectors in one way: a root that is not 32 bytes is always rejected."""
    return probe["wantErr"] or all(len(base64.b64decode(probe[k])) == 32 for k in ("root1", "root2"))


@pytest.mark.parametrize("probe", [p for p in VECTORS["consistency"] if _well_formed(p)], ids=lambda p: p["file"].split("testdata/")[1])
def test_consistency_vectors(probe: dict) -> None:
    args = (probe["size1"], probe["size2"], base64.b64decode(probe["root1"] or ""), base64.b64decode(probe["root2"] or ""),
            _b(probe["proof"]))
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


@pytest.mark.parametrize("probe", [p for p in VECTORS["inclusion"] if not p["wantErr"] and p["treeSize"] <= 8
                                   and base64.b64decode(p["root"]) == ROOTS[p["treeSize"]]],
                         ids=lambda p: p["file"].split("testdata/")[1])
def test_generated_inclusion_proofs_equal_the_vectors(probe: dict) -> None:
    ranges = merkle.inclusion_ranges(probe["leafIdx"], probe["treeSize"])
    assert [_range_hash(LEAVES, a, b) for a, b in ranges] == _b(probe["proof"])


@pytest.mark.parametrize("probe", [p for p in VECTORS["consistency"] if not p["wantErr"] and 0 < p["size1"] and p["size2"] <= 8
                                   and base64.b64decode(p["root2"]) == ROOTS[p["size2"]]],
                         ids=lambda p: p["file"].split("testdata/")[1])
def test_generated_consistency_proofs_equal_the_vectors(probe: dict) -> None:
    ranges = merkle.consistency_ranges(probe["size1"], probe["size2"])
    assert [_range_hash(LEAVES, a, b) for a, b in ranges] == _b(probe["proof"])


# -- brute force reference: PATH and PROOF straight from the RFC's recursive definitions ------------

def _path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = merkle.split_point(n)
    if m < k:
        return _path(m, d[:k]) + [merkle.mth(d[k:])]
    return _path(m - k, d[k:]) + [merkle.mth(d[:k])]


def _subproof(m: int, d: list[bytes], complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [merkle.mth(d)]
    k = merkle.split_point(n)
    if m <= k:
        return _subproof(m, d[:k], complete) + [merkle.mth(d[k:])]
    return _subproof(m - k, d[k:], False) + [merkle.mth(d[:k])]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_matches_the_rfc_definition(case: tuple[int, int]) -> None:
    n, m = case
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    path = [_range_hash(leaves, a, b) for a, b in merkle.inclusion_ranges(m, n)]
    assert path == _path(m, leaves)
    merkle.verify_inclusion(m, n, leaves[m], path, merkle.mth(leaves))
    if path:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(m, n, leaves[m], path[:-1], merkle.mth(leaves))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(m, n, merkle.leaf_hash(b"other"), path, merkle.mth(leaves))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_matches_the_rfc_definition(case: tuple[int, int]) -> None:
    m, n = case
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    proof = [_range_hash(leaves, a, b) for a, b in merkle.consistency_ranges(m, n)]
    assert proof == _subproof(m, leaves, True)
    merkle.verify_consistency(m, n, merkle.mth(leaves[:m]), merkle.mth(leaves), proof)
    if m < n:
        with pytest.raises(ProofError):
            merkle.verify_consistency(m, n, merkle.mth(leaves[: m - 1]) if m > 1 else merkle.leaf_hash(b"x"),
                                      merkle.mth(leaves), proof)


def test_complete_subtrees_are_aligned() -> None:
    assert merkle.complete_subtrees(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.complete_subtrees(8, 13) == [(2, 2), (0, 12)]
    assert merkle.complete_subtrees(4, 8) == [(2, 1)]

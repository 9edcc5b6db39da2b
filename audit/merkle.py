"""Merkle tree math of RFC 9162 section 2.1 (the same as RFC 6962 section 2.1), with no I/O.

Anyone can check ecert's transparency log with this module alone (it imports only hashlib):

* ``MTH({}) = SHA-256()``, ``MTH({d0}) = SHA-256(0x00 || d0)``,
  ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with ``k`` the largest power of two < n;
* ``PATH(m, D[n])`` (inclusion proofs) and ``PROOF(m, D[n])`` (consistency proofs) as *lists of
  leaf ranges* whose MTHs make up the proof, so a store can fetch exactly the hashes it needs;
* the verification algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.

A range ``[start, end)`` produced here is always *aligned*: ``start`` is a multiple of the smallest
power of two >= its size, so it splits into complete subtrees (:func:`complete_subtrees`) whose
hashes fold right to left into its MTH (:func:`fold`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "parents",
    "mth",
    "split_point",
    "inclusion_ranges",
    "consistency_ranges",
    "complete_subtrees",
    "fold",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify, or its parameters are impossible."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def parents(level: Sequence[bytes]) -> list[bytes]:
    """The node hashes one level up from an even number of sibling hashes (pairs, left to right)."""
    return [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]


def mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (the reference definition, recursive; a complete tree is hashed level by level,
    which gives the same root without the recursion)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if not n & (n - 1):
        level = list(leaf_hashes)
        while len(level) > 1:
            level = parents(level)
        return level[0]
    k = split_point(n)
    return node_hash(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


def inclusion_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form ``PATH(m, D[n])``, from the leaf's sibling up to the root's child."""
    if not 0 <= m < n:
        raise ProofError(f"leaf index {m} is not in a tree of size {n}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, n
    while end - start > 1:
        k = split_point(end - start)
        if m < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form ``PROOF(m, D[n])`` (RFC 9162 2.1.4.1), in proof order."""
    if not 0 < m <= n:
        raise ProofError(f"no consistency proof from size {m} to size {n}")
    ranges: list[tuple[int, int]] = []
    start, end, complete = 0, n, True  # SUBPROOF(m, D[start:end], complete)
    while True:
        size = end - start
        if m - start == size:
            if not complete:
                ranges.append((start, end))
            break
        k = split_point(size)
        if m - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, complete = start + k, False
    ranges.reverse()
    return ranges


def complete_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees ``(level, index)`` of an aligned range, left to right (largest first)."""
    out: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold(subtree_hashes: Sequence[bytes]) -> bytes:
    """The MTH of an aligned range from its complete subtrees' hashes (as :func:`complete_subtrees`)."""
    if not subtree_hashes:
        return EMPTY_ROOT
    acc = subtree_hashes[-1]
    for left in reversed(subtree_hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2 steps 1-5: the root a leaf and its audit path lead to."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf, "leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`ProofError` unless ``path`` proves ``leaf`` at ``index`` in the tree ``root``."""
    _check_hash(root, "root hash")
    if root_from_inclusion_proof(index, size, leaf, path) != root:
        raise ProofError("the inclusion proof leads to a different root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2: raise :class:`ProofError` unless ``proof`` shows tree ``second`` extends ``first``."""
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    for p in proof:
        _check_hash(p, "proof hash")
    if not 0 < first <= second:  # from the empty tree a proof is meaningless (RFC 9162 2.1.4)
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("two different roots for the same tree size")
        return
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is itself the first node
        path.insert(0, first_root)
    if not path:
        raise ProofError("empty consistency proof")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")

"""Canonical JSON and content hashes: the one way DecisionOps fingerprints data.

Plan versions, approved-argument hashes, idempotency keys and ledger entries all hash
the canonical form (sorted keys, no whitespace, UTF-8, ISO-8601 times), so the same
content hashes the same in every process and on every machine.

Not RFC 8785 (JCS), on purpose for now: the form agrees with JCS on ordinary data but
not on exponent floats (``1e-07`` / ``1e-7``), on keys outside the Basic Multilingual
Plane (JCS orders UTF-16 code units) or on integers past 2**53 (JCS refuses them), and
these hashes are stored (plans, approvals, idempotency keys, the ledger chain). Moving to
JCS needs a format version and a migration that re-hashes; tests/agent/test_hashing_rfc8785.py
pins where the two differ.

A batch of rows is committed to by one Merkle root (``merkle_root``): one ledger entry
stands for thousands of rows, and ``merkle_path``/``merkle_check`` still prove any one of
them against it.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

__all__ = ["canonical_json", "digest", "merkle_check", "merkle_leaf", "merkle_path", "merkle_root",
           "short_id"]


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot hash a value of type {type(value).__name__}")


def _normalize(value: Any) -> Any:
    # 1 and 1.0 must hash alike: an edit that re-types an integer amount as 150.0
    # is the same approved value. Exact types first: this runs on every hash.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): _normalize(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_normalize(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite numbers cannot be hashed")
        if value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Serialize ``value`` deterministically."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=_default, allow_nan=False)


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical form of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def short_id(prefix: str, *parts: Any, length: int = 20) -> str:
    """A deterministic id such as ``dec_3f2a…`` derived from ``parts``."""
    return f"{prefix}_{digest(list(parts))[:length]}"


# --------------------------------------------------------------------------- Merkle trees


def merkle_leaf(data: bytes) -> bytes:
    """The leaf of one row: SHA-256 over a 0x00 byte and the row (nodes use 0x01, so a
    leaf can never pass for a node)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _level_up(level: list[bytes]) -> list[bytes]:
    # An odd last node is carried up as it is.
    up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def merkle_root(leaves: list[bytes]) -> str:
    """The root (hex) over ``leaves`` in order; the empty tree's root is 64 zeros."""
    if not leaves:
        return "0" * 64
    level = leaves
    while len(level) > 1:
        level = _level_up(level)
    return level[0].hex()


def merkle_path(leaves: list[bytes], index: int) -> list[tuple[str, str]]:
    """The sibling hashes from leaf ``index`` up to the root, each with the side it sits
    on (``"L"`` or ``"R"``); a carried-up node has no sibling at that level."""
    path, level = [], leaves
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(("L" if sibling < index else "R", level[sibling].hex()))
        level = _level_up(level)
        index //= 2
    return path


def merkle_check(leaf: bytes, path: list[tuple[str, str]], root: str) -> bool:
    """Whether ``path`` leads from ``leaf`` to ``root``."""
    node = leaf
    for side, sibling in path:
        other = bytes.fromhex(sibling)
        node = _node(other, node) if side == "L" else _node(node, other)
    return node.hex() == root

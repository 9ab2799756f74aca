"""Why ``canonical_json`` is not RFC 8785 (JCS) yet: it agrees with ``rfc8785`` on
ordinary data, but not on exponent floats, on keys outside the Basic Multilingual Plane
(JCS sorts by UTF-16 code units, we by code points) or on integers past 2**53 (JCS
refuses them). Plan hashes, approved-argument hashes, idempotency keys and the ledger
chain are stored; switching would change some of them, so it waits for a migration
that re-hashes under a new format version. These tests pin both facts."""

from __future__ import annotations

import pytest
import rfc8785

from decisionops.agent.hashing import canonical_json

ORDINARY = [
    {"amount": 150.0, "score": 0.9, "account": "ACC-10001", "reason": "Goodwill crédit"},
    {"steps": [{"id": "a", "depends_on": []}, {"id": "b", "depends_on": ["a"]}],
     "n": -3, "ok": True, "none": None},
    {"\uff46\uff55\uff4c\uff4c": 1, "z": "\u2028 line separator", "ünïcode": [0.1, 2.5e-3]},
]


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_values_are_already_jcs(value: object) -> None:
    assert canonical_json(value).encode() == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{"t": 1e-7}, {"x": 1e21}, {"\U0001f600": 1, "\uff61": 2}])
def test_these_values_would_hash_differently_under_jcs(value: object) -> None:
    assert canonical_json(value).encode() != rfc8785.dumps(value)


def test_jcs_refuses_integers_we_hash() -> None:
    canonical_json({"big": 2 ** 60})
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps({"big": 2 ** 60})

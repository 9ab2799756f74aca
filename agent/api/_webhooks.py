"""Signed webhooks: ``DecisionOps-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``
where each ``v1`` is HMAC-SHA256(secret, ``"<t>.<raw body>"``), as Stripe signs.

A delivery is accepted when ``t`` is within the tolerance (300 s by default, past or
future) and any ``v1`` matches any configured secret (two during a rotation), compared
in constant time. ``DecisionOps-Delivery`` names the delivery; replays are answered
from the stored first response (see ``Store.claim_delivery``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from pydantic import SecretStr

from decisionops.agent.api._auth import Unauthenticated

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "BadSignature", "delivery_id_ok", "sign",
           "verify_signature"]

SIGNATURE_HEADER = "DecisionOps-Signature"
DELIVERY_HEADER = "DecisionOps-Delivery"
_DELIVERY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


class BadSignature(Unauthenticated):
    """The delivery is not signed by a current secret (answered 401 with ``message``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def verify_signature(header: str | None, body: bytes, secrets: Sequence[SecretStr], *,
                     now: float, tolerance: int) -> None:
    if not secrets:
        raise BadSignature("webhooks are not configured (set DECISIONOPS_WEBHOOK_SECRETS)")
    if not header:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    given: list[str] = []
    for part in header.split(",")[:10]:
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) < 12:
            timestamp = int(value)
        elif key == "v1" and len(value) == 64:
            given.append(value)
    if timestamp is None or not given:
        raise BadSignature(f"{SIGNATURE_HEADER} must look like t=<unix seconds>,v1=<hex sha256>")
    if abs(now - timestamp) > tolerance:
        raise BadSignature(f"signature timestamp is outside the {tolerance} s tolerance")
    ok = False
    for secret in secrets:
        expected = sign(secret.get_secret_value(), timestamp, body).encode()
        for candidate in given:
            # Every comparison runs (no early exit): constant time per candidate.
            ok |= hmac.compare_digest(expected, candidate.encode())
    if not ok:
        raise BadSignature("signature does not match")


def delivery_id_ok(value: str | None) -> bool:
    return bool(value) and bool(_DELIVERY.match(value or ""))

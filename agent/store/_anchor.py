"""Ledger anchors: the document that names one point of the chain (``Anchor``), how a
walked chain is checked against anchors (``anchor_problem``), and moving anchors out of
the store: to a file (``write_anchor``, ``load_anchor``) or to a receiver over HTTP
(``post_anchor``).

Why: the chain and its head row live in the same database, so someone who can write it
can cut the tail off, or rewrite an entry and re-hash everything after it, and leave a
chain that verifies. An anchor kept elsewhere (a file in other hands, a receiver that
only appends) pins what the chain was; ``ledger.verify(engine, anchors)`` reports a
chain that no longer reaches an anchored entry, or reaches it with another hash.

Taking an anchor (``ledger.anchor``) and walking the chain are in ``ledger``; this
module does not import it (``ledger`` imports this one).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from decisionops.agent.errors import InvalidInputError, RuntimeFailure, pydantic_message

__all__ = ["ANCHOR_FORMAT", "Anchor", "anchor_problem", "check_receiver", "load_anchor",
           "post_anchor", "write_anchor"]

ANCHOR_FORMAT = "decisionops-ledger-anchor/1"
_GENESIS = "0" * 64  # ledger.GENESIS, the hash "before" entry 1 (not imported: see above)
_MAX_FILE_BYTES = 64 * 1024  # an anchor is a few hundred bytes


def _sha256(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("must be 64 lowercase hex digits (a SHA-256)")
    return value


_Hash = Annotated[str, AfterValidator(_sha256)]


class Anchor(BaseModel):
    """One point of the chain, to keep outside the store. Field order is the document's."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format: str = ANCHOR_FORMAT
    """``decisionops-ledger-anchor/1``; any other is refused, not guessed at."""
    seq: int = Field(ge=0)
    """The entry anchored (the head of the chain when taken); 0: the empty chain."""
    hash: _Hash
    """That entry's hash."""
    at: AwareDatetime | None
    """That entry's time (None only for the empty chain)."""
    chain: _Hash
    """The hash of entry 1: which ledger this anchor is of, so an anchor of another
    deployment's ledger is told apart from a rewrite (all zeros while the chain is empty)."""
    exported_at: AwareDatetime
    """When the anchor was taken."""
    _source: str = PrivateAttr("")

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, value: Any) -> Any:
        if value != ANCHOR_FORMAT:
            raise ValueError(f"unknown anchor format {value!r}: this version reads "
                             f"{ANCHOR_FORMAT!r}")
        return value

    # Fields are validated in order, so each check below sees ``seq`` (when it was valid).
    @field_validator("hash")
    @classmethod
    def _hash_fits_seq(cls, value: str, info: ValidationInfo) -> str:
        seq = info.data.get("seq")
        if seq == 0 and value != _GENESIS:
            raise ValueError("the empty chain (seq 0) has the all-zeros hash")
        if seq and value == _GENESIS:
            raise ValueError(f"the all-zeros hash is the empty chain's, not entry {seq}'s")
        return value

    @field_validator("at")
    @classmethod
    def _at_fits_seq(cls, value: Any, info: ValidationInfo) -> Any:
        seq = info.data.get("seq")
        if seq == 0 and value is not None:
            raise ValueError("must be null for the empty chain (seq 0)")
        if seq and value is None:
            raise ValueError(f"required for entry {seq}")
        return value

    @field_validator("chain")
    @classmethod
    def _chain_fits_seq(cls, value: str, info: ValidationInfo) -> str:
        seq, digest = info.data.get("seq"), info.data.get("hash")
        if seq == 0 and value != _GENESIS:
            raise ValueError("the empty chain (seq 0) has the all-zeros chain")
        if seq == 1 and digest is not None and value != digest:
            raise ValueError("for entry 1 it is entry 1's own hash")
        return value

    @property
    def label(self) -> str:
        """How problems name this anchor: its file, else when it was taken."""
        return self._source or (
            f"the anchor exported at {self.exported_at.isoformat(timespec='seconds')}")


def anchor_problem(anchors: Sequence[Anchor], *, end: int, hashes: Mapping[int, str],
                   chain: str | None) -> tuple[int | None, str] | None:
    """The first anchor (lowest entry first) the walked chain does not hold, as (the first
    bad entry when known, the problem); None when all hold. ``end``: the last entry of
    the chain; ``hashes``: the hashes of the anchored entries it has; ``chain``: its
    entry 1's hash (None: the walk started later, and that was not seen)."""
    held: Anchor | None = None
    for anchor in sorted(anchors, key=lambda a: a.seq):
        if anchor.seq > end:
            return end + 1, (f"the chain ends at entry {end} but {anchor.label} names entry "
                             f"{anchor.seq} (hash {anchor.hash[:16]}…, at {_when(anchor)}): "
                             "entries were removed")
        if anchor.seq == 0:
            continue  # the empty chain is the start of every chain
        if chain is not None and anchor.chain != chain:
            return None, (f"{anchor.label} is of a chain whose entry 1 has hash "
                          f"{anchor.chain[:16]}…, this one's has {chain[:16]}…: an anchor of "
                          "another ledger, or the whole chain was rewritten")
        found = hashes[anchor.seq]
        if found != anchor.hash:
            where = (f"between entries {held.seq + 1} and {anchor.seq} ({held.label} still "
                     "holds)" if held is not None else f"at or before entry {anchor.seq}")
            return None, (f"entry {anchor.seq} has hash {found[:16]}… but {anchor.label} "
                          f"names hash {anchor.hash[:16]}… (at {_when(anchor)}): the chain "
                          f"was rewritten {where}")
        held = anchor
    return None


def _when(anchor: Anchor) -> str:
    return anchor.at.isoformat() if anchor.at is not None else "-"


# ---------------------------------------------------------------------- files


def load_anchor(path: Path) -> Anchor:
    """Read and validate an anchor file. Raises ``InvalidInputError`` naming the file
    (``location``) and, when one is at fault, the field."""
    where = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot be read ({exc.strerror or exc})", location=where
                                ) from exc
    if len(raw) > _MAX_FILE_BYTES:
        raise InvalidInputError(f"is over {_MAX_FILE_BYTES // 1024} KiB: not an anchor",
                                location=where)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"not JSON ({exc})", location=where) from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"must hold a JSON object (an anchor), not a "
                                f"{type(data).__name__}", location=where)
    try:
        anchor = Anchor.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = pydantic_message(err)
        field = ".".join(str(part) for part in err["loc"]) or None
        raise InvalidInputError(message, field=field, location=where) from exc
    anchor._source = f"anchor {where}"
    return anchor


def write_anchor(anchor: Anchor, path: Path) -> Path:
    """Write ``anchor`` to ``path`` as JSON, all at once (a reader never sees half)."""
    text = json.dumps(anchor.model_dump(mode="json"), indent=2) + "\n"
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------- HTTP


def check_receiver(url: str) -> str:
    """``url`` as it may be shown (no user, password or query: they may hold secrets);
    raises ``InvalidInputError`` unless it is an http(s) URL."""
    import httpx  # here: only posting needs it, and every import of the store would pay

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidInputError(f"not a URL ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInputError("must be an http:// or https:// URL with a host")
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def post_anchor(anchor: Anchor, url: str, *, timeout: float = 10.0,
                headers: Mapping[str, str] | None = None,
                signing_secret: str | None = None) -> int:
    """POST the anchor as JSON to ``url``; returns the receiver's status (2xx). Raises
    ``RuntimeFailure`` (``retryable`` for a network failure or a 5xx, 408 or 429) when
    the receiver does not take it, and ``InvalidInputError`` for a URL that is not
    http(s). Errors show the URL without credentials or query.

    With ``signing_secret`` (``whsec_<base64>``) the post is signed as Standard Webhooks
    specify: ``webhook-id`` (the same for every post of this anchor, so a receiver can
    drop a repeat), ``webhook-timestamp`` and ``webhook-signature``; a receiver checks
    them with ``standardwebhooks.Webhook(secret).verify(body, headers)``. ``headers``
    (such as the Bearer token) are sent either way."""
    import httpx

    shown = check_receiver(url)
    body = json.dumps(anchor.model_dump(mode="json"), ensure_ascii=False,
                      separators=(",", ":")).encode()
    sent = {"Content-Type": "application/json", **dict(headers or {})}
    if signing_secret:
        sent.update(_signed(anchor, body, signing_secret))
    try:
        response = httpx.post(url, content=body, timeout=timeout, headers=sent,
                              follow_redirects=False)
    except httpx.HTTPError as exc:
        reason = str(exc).replace(url, shown) or type(exc).__name__
        raise RuntimeFailure(f"anchor not posted to {shown}: {reason}", retryable=True
                             ) from exc
    status = response.status_code
    if not 200 <= status < 300:
        raise RuntimeFailure(f"anchor not posted: {shown} answered {status} "
                             f"{response.reason_phrase}".rstrip(),
                             retryable=status >= 500 or status in (408, 429))
    return status


def _signed(anchor: Anchor, body: bytes, secret: str) -> dict[str, str]:
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    message_id = f"anchor_{anchor.seq}_{anchor.hash[:16]}"
    now = datetime.now(UTC)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, body)}

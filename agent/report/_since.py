"""``--since`` values: a look-back (``12h``, ``7d``, ``30d``, ``2w``) or an ISO date/time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_since"]

_SPAN = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """The start of the period, as an aware UTC time. A look-back counts back from
    ``now``; an ISO date means its midnight UTC; an ISO time without a zone is UTC.
    ``ValueError`` with a message fit for the user otherwise."""
    value = text.strip().lower()
    match = _SPAN.match(value)
    if match:
        amount = int(match.group(1))
        if amount == 0:
            raise ValueError(f"{text!r} is an empty period; use e.g. 7d, 30d or 12h")
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: amount})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back too far") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a period (12h, 7d, 30d, 2w) nor an ISO date "
                         "(2026-11-01) or time (2026-11-01T09:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now:
        raise ValueError(f"{text!r} is in the future")
    return moment

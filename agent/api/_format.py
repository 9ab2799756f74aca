"""Jinja filters of the web inbox that keep long values readable on any screen width.

* ``softwrap``: escapes a value and offers line breaks (``<wbr>``) only after the
  characters that separate the parts of identifiers, paths and addresses (``_ . - / @ :
  , =``), so a long token wraps at a part boundary and never in the middle of a word.

Not here: layout (``static/app.css``), ids (templates truncate them with an ellipsis and
keep the full value in ``title``).
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

__all__ = ["softwrap"]

_BREAK_AFTER = re.compile(r"([_./@:,=-]+)")
_SHORT = 12
"""Tokens up to this length fit any column; they are left alone."""


def softwrap(value: Any) -> Markup:
    text = ("" if value is None else str(int(value))
            if isinstance(value, float) and value.is_integer() else str(value))
    parts = []
    for token in re.split(r"(\s+)", text):
        if len(token) <= _SHORT or token.isspace():
            parts.append(escape(token))
            continue
        pieces = _BREAK_AFTER.split(token)
        out = []
        for index, piece in enumerate(pieces):
            out.append(escape(piece))
            if index % 2 == 1 and index < len(pieces) - 1 and pieces[index + 1]:
                out.append(Markup("<wbr>"))
        parts.append(Markup("").join(out))
    return Markup("").join(parts)


"""One source row (a dict of column → raw value) onto one ``Prediction``, by a ``FieldMapping``.

Every problem in the row is collected and raised together as ``RowRejected``; the
readers turn it into ``RowError`` entries. Values are data: nothing here evaluates a
cell (``=SUM(A1)`` stays that text). Reading files and bodies lives elsewhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, NamedTuple

from pydantic import ValidationError

from agent.hashing import short_id
from agent.models import Prediction
from agent.sources._batch import Problem, RowRejected, SourceLimits
from agent.sources._mapping import TARGET_FIELDS, FieldMapping

__all__ = ["Given", "derive_id", "parse_timestamp", "to_prediction"]

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_EPOCH = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_MAX_EPOCH = 1e11  # year 5138: anything larger is almost surely milliseconds
_MAX_EXPLANATION = 50  # Prediction.explanation's bound
_NUMERIC = ("score", "value", "value_at_stake")
_IDENTIFIERS = ("id", "model", "model_version", "entity_id", "kind", "entity_type", "currency")
_PENDING_ID = "pending"


class Given(NamedTuple):
    """A value supplied from outside the row (a model-server score, an explicit argument)."""

    value: Any
    source: str


def derive_id(prediction: Prediction, *, time_in_id: bool = True,
              anchor: str | None = None) -> str:
    """The stable id of a prediction that came without one."""
    parts: list[Any] = [prediction.model, prediction.model_version, prediction.kind,
                        prediction.entity_id]
    parts.append(prediction.observed_at.isoformat() if time_in_id else None)
    if anchor is not None:
        parts.append(anchor)
    return short_id("prd", *parts)


def parse_timestamp(raw: Any, zone: tzinfo | None) -> datetime:
    """ISO-8601 (``Z`` or offset) or epoch seconds → aware UTC datetime. ``ValueError``
    with a readable message otherwise; naive times need ``zone``."""
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, bool):
        raise ValueError("must be an ISO-8601 time or epoch seconds, not a boolean")
    elif isinstance(raw, int | float):
        moment = _from_epoch(float(raw))
    elif isinstance(raw, str):
        text = raw.strip()
        if _EPOCH.fullmatch(text):
            moment = _from_epoch(float(text))
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError("must be an ISO-8601 time (2026-11-01T09:00:00Z) "
                                 "or epoch seconds") from None
    else:
        raise ValueError(f"must be an ISO-8601 time or epoch seconds, not {type(raw).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        if zone is None:
            raise ValueError("has no time zone: add Z or an offset (2026-11-01T09:00:00Z), "
                             "or set timezone in the mapping")
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds) or abs(seconds) > _MAX_EPOCH:
        raise ValueError("epoch seconds out of range (milliseconds are not accepted)")
    return datetime.fromtimestamp(seconds, UTC)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cell_scalar(text: str) -> Any:
    """A CSV feature cell: canonical integers and finite decimals become numbers, the
    rest stays the exact text (formula-like cells included)."""
    if _INT.fullmatch(text):
        # Past int64 a "number" is an identifier or a code: keep the text.
        return int(text) if len(text.lstrip("-")) <= 18 else text
    if _FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


class _Row:
    """The working state of one row: values picked so far, where each came from, problems."""

    def __init__(self, limits: SourceLimits) -> None:
        self.data: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        self.problems: list[Problem] = []
        self._limit = limits.max_field_chars

    def fits(self, field: str, source: str, value: Any) -> bool:
        if isinstance(value, str) and len(value) > self._limit:
            self.problems.append(Problem(field, source, f"is {len(value)} characters, over the "
                                                        f"limit of {self._limit}", value))
            return False
        return True

    def problem(self, field: str, source: str | None, message: str, value: Any = None) -> None:
        self.problems.append(Problem(field, source, message, value))


def to_prediction(row: Mapping[str, Any], mapping: FieldMapping, *, limits: SourceLimits,
                  text_cells: bool = False, given: Mapping[str, Given] | None = None,
                  fallback: Mapping[str, Given] | None = None, time_in_id: bool = True,
                  anchor: str | None = None) -> Prediction:
    """Map ``row`` onto a ``Prediction`` or raise ``RowRejected`` with every problem.

    Precedence per field: ``given`` > the mapped column (non-blank) > ``mapping.defaults``
    > ``fallback``. ``text_cells`` says values are CSV text (feature cells that look like
    numbers become numbers). ``time_in_id``/``anchor`` shape the derived id (``derive_id``).
    """
    state = _Row(limits)
    given = given or {}
    fallback = fallback or {}
    for target in TARGET_FIELDS:
        column = mapping.column(target)
        if target in given:
            raw, source = given[target]
        elif column is not None and not _blank(row.get(column)):
            raw, source = row[column], column
        elif target in mapping.defaults:
            raw, source = mapping.defaults[target], f"defaults.{target}"
        elif target in fallback:
            raw, source = fallback[target]
        else:
            continue
        if state.fits(target, source, raw):
            _put(state, target, source, raw, mapping)
    _collect_columns(state, row, mapping, text_cells)
    return _validate(state, mapping, time_in_id=time_in_id, anchor=anchor)


def _put(state: _Row, target: str, source: str, raw: Any, mapping: FieldMapping) -> None:
    if target in _NUMERIC:
        if isinstance(raw, bool):
            return state.problem(target, source, "must be a number, not a boolean", raw)
        number = raw
        if isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                number = None  # not a number at all: Prediction says so
        if isinstance(number, float) and not math.isfinite(number):
            return state.problem(target, source, "must be a finite number", raw)
    elif target in _IDENTIFIERS and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # JSON ids are often numbers
    elif target == "observed_at":
        try:
            raw = parse_timestamp(raw, mapping.zone)
        except ValueError as exc:
            return state.problem(target, source, str(exc), raw)
    elif target in ("explanation", "features"):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError):
                return state.problem(target, source, "must be a JSON object (not valid JSON)", raw)
        if not isinstance(raw, dict):
            return state.problem(target, source, "must be a JSON object", raw)
        for key in raw:
            state.origin[f"{target}.{key}"] = source
    state.data[target] = raw
    state.origin[target] = source
    return None


def _collect_columns(state: _Row, row: Mapping[str, Any], mapping: FieldMapping,
                     text_cells: bool) -> None:
    """Gather ``feature_columns`` and ``explanation_prefix`` columns; they win over a
    JSON object column of the same field."""
    features: dict[str, Any] = {}
    for pattern in mapping.feature_columns:
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            names = [(c, c[len(prefix):]) for c in row
                     if isinstance(c, str) and c.startswith(prefix) and c != prefix]
        else:
            names = [(pattern, pattern)] if pattern in row else []
        for column, name in names:
            value = row[column]
            if text_cells and _blank(value):
                continue
            if not state.fits(f"features.{name}", column, value):
                continue
            features[name] = _cell_scalar(value) if text_cells and isinstance(value, str) else value
            state.origin[f"features.{name}"] = column
    if features:
        state.data["features"] = {**state.data.get("features", {}), **features}

    attributions: dict[str, Any] = {}
    prefix = mapping.explanation_prefix
    if prefix:
        for column, value in row.items():
            if (not isinstance(column, str) or not column.startswith(prefix)
                    or column == prefix or _blank(value)):
                continue
            name = column[len(prefix):]
            if state.fits(f"explanation.{name}", column, value):
                attributions[name] = value
                state.origin[f"explanation.{name}"] = column
    if attributions or "explanation" in state.data:
        state.data["explanation"] = _rank({**state.data.get("explanation", {}), **attributions})


def _rank(explanation: dict[str, Any]) -> dict[str, Any]:
    """Largest absolute attribution first, at most 50; left as is when a value is not a
    finite number (validation then names it)."""
    weights: dict[str, float] = {}
    for key, value in explanation.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return explanation
        try:
            weight = abs(float(value))
        except ValueError:
            return explanation
        if not math.isfinite(weight):
            return explanation
        weights[key] = weight
    ranked = sorted(explanation, key=lambda k: weights[k], reverse=True)[:_MAX_EXPLANATION]
    return {k: explanation[k] for k in ranked}


def _validate(state: _Row, mapping: FieldMapping, *, time_in_id: bool,
              anchor: str | None) -> Prediction:
    failed = {p.field for p in state.problems}
    data = {k: v for k, v in state.data.items() if k not in failed}
    derive = "id" not in data and "id" not in failed
    if derive:
        data["id"] = _PENDING_ID
    try:
        prediction = Prediction.model_validate(data)
    except ValidationError as exc:
        state.problems.extend(p for p in _problems(exc, state.origin, mapping)
                              if p.field not in failed)
        raise RowRejected(state.problems) from None
    if state.problems:
        raise RowRejected(state.problems)
    if derive:
        prediction = prediction.model_copy(
            update={"id": derive_id(prediction, time_in_id=time_in_id, anchor=anchor)})
    return prediction


def _problems(exc: ValidationError, origin: Mapping[str, str],
              mapping: FieldMapping) -> list[Problem]:
    """Pydantic errors → one problem per dotted field (a union's alternatives collapse)."""
    out: dict[str, Problem] = {}
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        # Prediction is flat except the two dicts: their key is the second element; any
        # further element is a union branch or pydantic's "[key]" marker.
        depth = 2 if loc and loc[0] in ("features", "explanation") and len(loc) > 1 else 1
        field = ".".join(str(p) for p in loc[:depth])[:120]
        if field in out:
            if field.startswith("features."):
                out[field] = out[field]._replace(
                    message="must be a string, number, boolean or null")
            continue
        message = err["msg"].removeprefix("Value error, ")
        source = origin.get(field) or origin.get(str(loc[0]) if loc else "")
        if err["type"] == "missing":
            column = mapping.column(field) if field in TARGET_FIELDS else None
            message = (f"missing: no value in {column!r} and no default" if column
                       else "missing: not mapped to a column and no default")
            source = column
        out[field] = Problem(field, source, message, None if err["type"] == "missing"
                             else err.get("input"))
    return list(out.values())

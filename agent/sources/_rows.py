"""One source row (a dict of column → raw value) onto one ``Prediction``, by a ``FieldMapping``
(``RowMapper``, which works out once per mapping and header where each field comes from).

Every problem in the row is collected and raised together as ``RowRejected``; the
readers turn it into ``RowError`` entries. Values are data: nothing here evaluates a
cell (``=SUM(A1)`` stays that text). Reading files and bodies lives elsewhere.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from decisionops.agent.errors import pydantic_message
from decisionops.agent.hashing import short_id
from decisionops.agent.models import CLOCK_SKEW, Prediction, utcnow
from decisionops.agent.sources._batch import DERIVED_PREFIX, Problem, RowRejected, SourceLimits
from decisionops.agent.sources._mapping import TARGET_FIELDS, FieldMapping

__all__ = ["Given", "RowMapper", "default_problems", "derive_id", "parse_timestamp"]

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_EPOCH = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_MAX_EPOCH = 1e11  # year 5138: anything larger is almost surely milliseconds
_MAX_EXPLANATION = 50  # Prediction.explanation's bound
_NUMERIC = ("score", "value", "value_at_stake")
_IDENTIFIERS = ("id", "model", "model_version", "entity_id", "kind", "entity_type", "currency")
_PENDING_ID = "pending"
_CONVERTED = frozenset((*_NUMERIC, "observed_at", "explanation", "features"))
"""Fields whose text ``_put`` converts; the others keep text as it is."""


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
    return short_id(DERIVED_PREFIX.rstrip("_"), *parts)


def default_problems(mapping: FieldMapping, limits: SourceLimits | None = None
                     ) -> dict[str, str]:
    """What is wrong with each bad value in ``mapping.defaults``, by field: checked once,
    where a bad default would otherwise fail every row that uses it."""
    out: dict[str, str] = {}
    mapper = RowMapper(mapping, limits or SourceLimits())
    for target, raw in mapping.defaults.items():
        state = _Row()
        mapper._put(state, target, f"defaults.{target}", raw)
        if state.problems:
            out[target] = state.problems[0].message
            continue
        info = Prediction.model_fields[target]
        try:
            TypeAdapter(Annotated[info.annotation, *info.metadata]).validate_python(
                state.data[target])
        except ValidationError as exc:
            out[target] = pydantic_message(exc.errors(include_url=False)[0])
    return out


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
        moment = _local(moment, zone)
    return moment.astimezone(UTC)


def _local(naive: datetime, zone: tzinfo) -> datetime:
    """``naive`` as a wall-clock time of ``zone``; ``ValueError`` for one the zone's clocks
    skipped (spring forward) or showed twice (fall back): no instant, or two."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    name = getattr(zone, "key", None) or str(zone)
    # A time in a gap does not survive the trip to UTC and back: it comes back moved.
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        what = f"does not exist in {name} (the clocks went forward)"
    else:
        what = f"happened twice in {name} (the clocks went back)"
    raise ValueError(f"{naive.isoformat()} {what}: add its offset "
                     f"({naive.isoformat()}{_offset(first)} or {_offset(second)})")


def _offset(moment: datetime) -> str:
    seconds = int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


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

    __slots__ = ("data", "origin", "problems")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        self.problems: list[Problem] = []

    def problem(self, field: str, source: str | None, message: str, value: Any = None) -> None:
        self.problems.append(Problem(field, source, message, value))


class RowMapper:
    """Maps rows onto ``Prediction`` by one ``FieldMapping``: where each field comes from
    is worked out once, not once per row (a bulk file has a million rows and one header).

    Precedence per field: ``given`` > the mapped column (non-blank) > ``mapping.defaults``
    > ``fallback``. ``text_cells`` says values are CSV text (feature cells that look like
    numbers become numbers). ``time_in_id``/``anchor`` shape the derived id (``derive_id``).
    """

    def __init__(self, mapping: FieldMapping, limits: SourceLimits, *,
                 text_cells: bool = False) -> None:
        self.mapping = mapping
        self._limit = limits.max_field_chars
        self._text_cells = text_cells
        self._plan = [(target, mapping.column(target),
                       (mapping.defaults[target], f"defaults.{target}")
                       if target in mapping.defaults else None,
                       target not in _CONVERTED) for target in TARGET_FIELDS]
        self._zone = mapping.zone
        self._times: dict[str, datetime] = {}
        self._columns: tuple[list[tuple[str, str]], list[tuple[str, str]]] | None = None

    def bind_header(self, header: list[str]) -> None:
        """Every row has these columns (a CSV header): find the feature and explanation
        columns once."""
        self._columns = (_feature_columns(header, self.mapping),
                         _explanation_columns(header, self.mapping))

    def __call__(self, row: Mapping[str, Any], *, given: Mapping[str, Given] | None = None,
                 fallback: Mapping[str, Given] | None = None, time_in_id: bool = True,
                 anchor: str | None = None) -> Prediction:
        """Map ``row`` onto a ``Prediction`` or raise ``RowRejected`` with every problem."""
        state = _Row()
        data, origin, limit = state.data, state.origin, self._limit
        for target, column, default, plain in self._plan:
            if given and target in given:
                raw, source = given[target]
            elif column is not None and (value := row.get(column)) is not None and not (
                    isinstance(value, str) and not value.strip()):  # not _blank, inlined
                raw, source = value, column
            elif default is not None:
                raw, source = default
            elif fallback and target in fallback:
                raw, source = fallback[target]
            else:
                continue
            if type(raw) is str:
                if len(raw) > limit:
                    self._fits(state, target, source, raw)
                    continue
                if plain:  # most fields of most rows: text kept as it is
                    data[target] = raw
                    origin[target] = source
                    continue
            self._put(state, target, source, raw)
        self._collect_columns(state, row)
        return _validate(state, self.mapping, time_in_id=time_in_id, anchor=anchor)

    def _fits(self, state: _Row, field: str, source: str, value: Any) -> bool:
        if isinstance(value, str) and len(value) > self._limit:
            state.problem(field, source, f"is {len(value)} characters, over the limit of "
                                         f"{self._limit}", value)
            return False
        return True

    def _time(self, raw: Any) -> datetime:
        if not isinstance(raw, str):
            return parse_timestamp(raw, self._zone)
        moment = self._times.get(raw)
        if moment is None:
            if len(self._times) > 4096:  # a nightly file repeats a few; a stream, many
                self._times.clear()
            moment = self._times[raw] = parse_timestamp(raw, self._zone)
        return moment

    def _put(self, state: _Row, target: str, source: str, raw: Any) -> None:
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
                raw = self._time(raw)
            except ValueError as exc:
                return state.problem(target, source, str(exc), raw)
        elif target in ("explanation", "features"):
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw)
                except (ValueError, RecursionError):
                    return state.problem(target, source, "must be a JSON object (not valid "
                                                         "JSON)", raw)
            if not isinstance(raw, dict):
                return state.problem(target, source, "must be a JSON object", raw)
            # Its keys' problems are reported with this source (``_problems`` falls back
            # to the field's own).
        state.data[target] = raw
        state.origin[target] = source
        return None

    def _collect_columns(self, state: _Row, row: Mapping[str, Any]) -> None:
        """Gather ``feature_columns`` and ``explanation_prefix`` columns; they win over a
        JSON object column of the same field."""
        if self._columns is not None:
            feature_columns, explanation_columns = self._columns
        else:
            feature_columns = _feature_columns(row, self.mapping)
            explanation_columns = _explanation_columns(row, self.mapping)
        text_cells = self._text_cells
        features: dict[str, Any] = {}
        for column, name in feature_columns:
            if column not in row:
                continue
            value = row[column]
            if text_cells and _blank(value):
                continue
            if not self._fits(state, f"features.{name}", column, value):
                continue
            features[name] = _cell_scalar(value) if text_cells and isinstance(value, str) else value
            state.origin[f"features.{name}"] = column
        if features:
            state.data["features"] = {**state.data.get("features", {}), **features}
        attributions: dict[str, Any] = {}
        for column, name in explanation_columns:
            value = row.get(column)
            if _blank(value):
                continue
            if self._fits(state, f"explanation.{name}", column, value):
                attributions[name] = value
                state.origin[f"explanation.{name}"] = column
        if attributions or "explanation" in state.data:
            state.data["explanation"] = _rank({**state.data.get("explanation", {}),
                                               **attributions})


def _feature_columns(columns: Iterable[Any], mapping: FieldMapping) -> list[tuple[str, str]]:
    """(column, feature name) of the ``feature_columns`` among ``columns``, in pattern order."""
    present = list(columns)
    out: list[tuple[str, str]] = []
    for pattern in mapping.feature_columns:
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            out += [(c, c[len(prefix):]) for c in present
                    if isinstance(c, str) and c.startswith(prefix) and c != prefix]
        elif pattern in present:
            out.append((pattern, pattern))
    return out


def _explanation_columns(columns: Iterable[Any], mapping: FieldMapping
                         ) -> list[tuple[str, str]]:
    prefix = mapping.explanation_prefix
    if not prefix:
        return []
    return [(c, c[len(prefix):]) for c in columns
            if isinstance(c, str) and c.startswith(prefix) and c != prefix]


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
    data = {k: v for k, v in state.data.items() if k not in failed} if failed else state.data
    derive = "id" not in data and "id" not in failed
    if derive:
        data["id"] = _PENDING_ID
    try:
        prediction = Prediction.model_validate(data)
    except ValidationError as exc:
        state.problems.extend(p for p in _problems(exc, state.origin, mapping)
                              if p.field not in failed)
        raise RowRejected(state.problems) from None
    if prediction.observed_at > utcnow() + CLOCK_SKEW:
        state.problems.append(Problem("observed_at", state.origin.get("observed_at"),
                                      "is in the future: a prediction is observed when it is "
                                      "made", prediction.observed_at.isoformat()))
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
    by_field: dict[str, list[Any]] = {}
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        # Prediction is flat except the two dicts: their key is the second element; any
        # further element is a union branch or pydantic's "[key]" marker.
        depth = 2 if loc and loc[0] in ("features", "explanation") and len(loc) > 1 else 1
        by_field.setdefault(".".join(str(p) for p in loc[:depth])[:120], []).append(err)
    for field, errors in by_field.items():
        # Only a feature's value is a union (string, number, boolean or null) whose
        # branches each report; any other field's first error is its own.
        err = _own_branch(errors) if field.startswith("features.") and len(errors) > 1 \
            else errors[0]
        if err is None:  # a feature of none of the types it may have
            out[field] = Problem(field, origin.get(field) or origin.get(field.split(".")[0]),
                                 "must be a string, number, boolean or null",
                                 errors[0].get("input"))
            continue
        loc = err["loc"]
        message = pydantic_message(err)
        source = origin.get(field) or origin.get(str(loc[0]) if loc else "")
        if err["type"] == "missing":
            column = mapping.column(field) if field in TARGET_FIELDS else None
            message = (f"missing: no value in {column!r} and no default" if column
                       else "missing: not mapped to a column and no default")
            source = column
        out[field] = Problem(field, source, message, None if err["type"] == "missing"
                             else err.get("input"))
    return list(out.values())


_BRANCHES = {str: "str", bool: "bool", int: "int", float: "float"}


def _own_branch(errors: list[Any]) -> Any | None:
    """Of a union's errors for one value, the one from the branch of the value's own type
    (a string too long says so); ``None`` when the value is of none of them."""
    branch = _BRANCHES.get(type(errors[0].get("input")))
    if branch is None:
        return None
    return next((e for e in errors if len(e["loc"]) > 2
                 and str(e["loc"][2]).rsplit("-", 1)[-1] == branch), None)


def decimal_floats(table: Any) -> Any:
    """``table`` (a pyarrow Table or RecordBatch) with its float32 and float16 columns
    read at their decimal meaning: a float32 0.65 is 0.6499999761581421 as a double, under a
    playbook's ``min_score: 0.65`` where the same score written in a CSV is not (trial 22:
    "score 0.65 < 0.65"). Each value goes through its shortest text form, as a person and
    a CSV export read it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, column in enumerate(table.schema):
        if pa.types.is_float32(column.type):
            wide = pc.cast(pc.cast(table.column(i), pa.string()), pa.float64())
        elif pa.types.is_float16(column.type):  # rare: value by value
            wide = pa.array([decimal_of(v, "e") for v in
                             pc.cast(table.column(i), pa.float64()).to_pylist()], pa.float64())
        else:
            continue
        table = table.set_column(i, column.name, wide)
    return table


def decimal_of(value: Any, precision: str) -> Any:
    """A number stored at single (``"f"``) or half (``"e"``) precision, read at its
    decimal meaning: the shortest decimal that is the same number at that precision
    (a KServe FP32 score sent as 0.6499999761581421 is 0.65). Anything else as it is."""
    if type(value) is not float or not math.isfinite(value):
        return value
    try:
        narrow = struct.unpack(precision, struct.pack(precision, value))[0]
    except (OverflowError, struct.error):
        return value
    if not math.isfinite(narrow):
        return value  # out of that precision's range: refused as it was sent
    for digits in range(1, 18):
        text = f"{narrow:.{digits}g}"
        try:
            if struct.unpack(precision, struct.pack(precision, float(text)))[0] == narrow:
                return float(text)
        except (OverflowError, struct.error):
            continue
    return value


"""MLflow scoring server (``POST /invocations``) bodies onto ``SourceBatch``.

Response: ``{"predictions": [...]}`` or the bare list of older servers; an item is a
number, a list of class probabilities, or an object holding the score. Request, as
sent: ``dataframe_split`` (``columns``/``data``, optional ``index``),
``dataframe_records``, or named ``inputs``/``instances``; the entity id is one of its
columns (``"@index"`` names the ``dataframe_split`` index). The rest of the request
row is mapped like a CSV row (``feature_columns``, ``value_at_stake``…).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources._batch import Problem, SourceBatch, SourceLimits, collect
from decisionops.agent.sources._bodies import Body, fingerprint, join, load_body, resolve_observed_at
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._rows import Given

__all__ = ["INDEX_COLUMN", "iter_mlflow", "parse_mlflow"]

INDEX_COLUMN = "@index"
"""``entity_column`` value naming the ``dataframe_split`` index."""
_SCORE_KEYS = ("score", "probability")


def iter_mlflow(response: Body, request: Body, *, mapping: FieldMapping, entity_column: str,
                 positive_index: int = 1, score_key: str | None = None,
                 observed_at: datetime | str | float | None = None,
                 limits: SourceLimits | None = None, batch_rows: int | None = 5000
                 ) -> Iterator[SourceBatch]:
    """Join an MLflow response to the entity ids of its request.

    ``positive_index`` picks the class of a probability list (the second of two by
    default); ``score_key`` the key of an object item (default ``score``, then
    ``probability``). Whole-body problems, such as a different number of request rows
    and predictions, raise ``InvalidInputError``; a bad item fails its row.
    """
    limits = limits or SourceLimits()
    req = load_body(request, what="request", limits=limits)
    resp = load_body(response, what="response", limits=limits)
    rows, row_path = _request_rows(req)
    items, item_path = _predictions(resp, score_key)
    if len(rows) != len(items):
        raise InvalidInputError(
            f"the request has {len(rows)} rows but the response has {len(items)} predictions",
            field=item_path or "predictions", location="response",
            request_rows=len(rows), predictions=len(items))
    if rows and not any(entity_column in r for r in rows):
        shown = ", ".join(sorted({k for r in rows[:50] for k in r}))[:300]
        raise InvalidInputError(f"no column {entity_column!r} in the request; it has: {shown}",
                                field="entity_column", location="request")
    entities = [Given(r.get(entity_column), f"request.{row_path}[{i}].{entity_column}")
                for i, r in enumerate(rows)]
    scores = [_score(item, f"{item_path}[{i}]", positive_index, score_key)
              for i, item in enumerate(items)]
    return join(rows, entities, scores, mapping, limits=limits, location="mlflow response",
                observed_at=resolve_observed_at(observed_at, mapping),
                batch_rows=batch_rows, body_digest=fingerprint(resp, req))


# --------------------------------------------------------------------------- request


def _request_rows(req: Any) -> tuple[list[dict[str, Any]], str]:
    """The request as a list of column → value rows, and the JSON path of those rows."""
    if isinstance(req, list):
        return _records(req, ""), ""
    if not isinstance(req, dict):
        raise InvalidInputError("must be a JSON object", location="request")
    if "dataframe_split" in req:
        return _split(req["dataframe_split"], "dataframe_split"), "dataframe_split.data"
    if "dataframe_records" in req:
        return _records(req["dataframe_records"], "dataframe_records"), "dataframe_records"
    for key in ("inputs", "instances"):
        if key in req:
            return _named(req[key], key), key
    raise InvalidInputError("has none of dataframe_split, dataframe_records, inputs, instances",
                            location="request")


def _split(split: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(split, dict):
        raise InvalidInputError("must be an object with columns and data", field=path,
                                location="request")
    columns, data, index = split.get("columns"), split.get("data"), split.get("index")
    if not isinstance(columns, list):
        raise InvalidInputError("must be a list of column names", field=f"{path}.columns",
                                location="request")
    if not isinstance(data, list):
        raise InvalidInputError("must be a list of rows", field=f"{path}.data",
                                location="request")
    names = [str(c) for c in columns]
    rows = []
    for i, values in enumerate(data):
        if not isinstance(values, list) or len(values) != len(names):
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise InvalidInputError(f"has {got} values; there are {len(names)} columns",
                                    field=f"{path}.data[{i}]", location="request")
        rows.append(dict(zip(names, values, strict=True)))
    if index is not None:
        if not isinstance(index, list) or len(index) != len(rows):
            raise InvalidInputError(f"must be a list of {len(rows)} values, one per row",
                                    field=f"{path}.index", location="request")
        for row, label in zip(rows, index, strict=True):
            row[INDEX_COLUMN] = label
    return rows


def _records(records: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(records, list):
        raise InvalidInputError("must be a list of objects", field=path or None,
                                location="request")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputError("must be an object (column → value)", field=f"{path}[{i}]",
                                    location="request")
    return [{str(k): v for k, v in record.items()} for record in records]


def _named(inputs: Any, key: str) -> list[dict[str, Any]]:
    """``inputs``/``instances``: a list of objects, or an object of equally long columns."""
    if isinstance(inputs, list):
        if all(isinstance(r, dict) for r in inputs):
            return _records(inputs, key)
        raise InvalidInputError(
            "holds unnamed values, so the entity column cannot be found; send "
            "dataframe_split, dataframe_records, or named columns", field=key,
            location="request")
    if not isinstance(inputs, dict):
        raise InvalidInputError("must be a list of objects or an object of columns",
                                field=key, location="request")
    lengths = {name: len(col) for name, col in inputs.items() if isinstance(col, list)}
    if len(lengths) != len(inputs) or len(set(lengths.values())) > 1:
        raise InvalidInputError("named inputs must all be lists of the same length; got "
                                + ", ".join(f"{n}: {lengths.get(n, 'not a list')}"
                                            for n in list(inputs)[:20]),
                                field=key, location="request")
    count = next(iter(lengths.values()), 0)
    return [{str(name): col[i] for name, col in inputs.items()} for i in range(count)]


# --------------------------------------------------------------------------- response


def _predictions(resp: Any, score_key: str | None) -> tuple[list[Any], str]:
    if isinstance(resp, list):
        return resp, ""
    if not isinstance(resp, dict) or "predictions" not in resp:
        raise InvalidInputError("must be an object with 'predictions' or a list",
                                field="predictions", location="response")
    items = resp["predictions"]
    if isinstance(items, dict):  # column-oriented output: {"score": [...], "label": [...]}
        keys = (score_key,) if score_key else _SCORE_KEYS
        for key in keys:
            if isinstance(items.get(key), list):
                return items[key], f"predictions.{key}"
        raise InvalidInputError(f"is an object without a list under {' or '.join(map(repr, keys))}",
                                field="predictions", location="response")
    if not isinstance(items, list):
        raise InvalidInputError("must be a list", field="predictions", location="response")
    return items, "predictions"


def _score(item: Any, path: str, positive_index: int, score_key: str | None) -> Given | Problem:
    """The score inside one prediction item, with the JSON path it came from."""
    if isinstance(item, dict):
        keys = (score_key,) if score_key else _SCORE_KEYS
        for key in keys:
            if key in item and not isinstance(item[key], dict):
                return _score(item[key], f"{path}.{key}", positive_index, None)
        return Problem("score", path, f"has no score under {' or '.join(map(repr, keys))}", item)
    if isinstance(item, list):
        if len(item) == 1:
            return Given(item[0], f"{path}[0]")
        if not 0 <= positive_index < len(item):
            return Problem("score", path, f"has {len(item)} class probabilities; "
                                          f"positive_index {positive_index} is out of range", item)
        return Given(item[positive_index], f"{path}[{positive_index}]")
    return Given(item, path)


def parse_mlflow(response: Body, request: Body, **options: Any) -> SourceBatch:
    """``iter_mlflow`` read whole into one ``SourceBatch`` (the same options)."""
    return collect(iter_mlflow(response, request, **options, batch_rows=None))

"""Model-server responses as a user has them, joined by row order to the input they scored.

A serving stack answers with scores only: MLflow ``/invocations`` and KServe V1
``{"predictions": [...]}`` (numbers, class-probability lists, or objects keyed by class
or by ``score``/``probability``), or an Open Inference Protocol (KServe V2) ``infer``
response ``{"outputs": [{"name", "shape", "datatype", "data"}]}`` (``[n]`` or
``[n, k]`` probabilities). The entity ids and other columns live in the input that was
scored: a CSV/JSONL/Parquet table, or the request body itself (MLflow
``dataframe_split``/``dataframe_records``/``inputs``/``instances``, KServe V1
``instances``, V2 ``inputs`` tensors). ``iter_scored`` joins row *i* of the input to
score *i*; a different number of rows refuses the whole body.

``detect`` tells these bodies apart by shape (for ``--format auto``). Joined columns
become features (unless the mapping names ``feature_columns``) and feed the mapping
like CSV columns (``value_at_stake: arr``). ``"@index"`` names the ``dataframe_split``
index, else the row's 0-based position.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources._batch import Problem, SourceBatch, SourceLimits, clip, collect
from decisionops.agent.sources._bodies import Body, fingerprint, join, load_body, resolve_observed_at
from decisionops.agent.sources._inputs import _is_tensor, read_inputs
from decisionops.agent.sources._kserve import (
    _NUMERIC,
    _data,
    _pick_output,
    _shape,
    tensor_scores,
)
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._mlflow import INDEX_COLUMN, _predictions
from decisionops.agent.sources._rows import Given

__all__ = ["BodyKind", "Positive", "detect", "iter_scored", "parse_scored"]

BodyKind = Literal["response", "kserve_v2_response", "request", "kserve_v2_request"]
"""``response``: MLflow or KServe V1 ``predictions``; ``request``: MLflow or KServe V1
rows (the two stacks share these shapes)."""
Positive = int | str | None
"""The positive class: an index into a probability row, or a class name (an object
item's key); ``None``: the last column, or a key named ``1``/``true``/``yes``."""

_REQUEST_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_SCORE_KEYS = ("score", "probability", "probabilities")
_POSITIVE_NAMES = ("1", "true", "True", "yes", "positive", "1.0")
_MAX_FEATURES = 100  # Prediction.features' bound


def _number_or_row(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_number_or_row(v) and not isinstance(v, list) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def detect(body: Any) -> BodyKind | None:
    """Which model-server body ``body`` (parsed JSON) is, by its shape; ``None``: none."""
    if isinstance(body, list):  # the bare list older MLflow servers answer with
        return "response" if body and all(_number_or_row(x) for x in body) else None
    if not isinstance(body, dict):
        return None
    outputs, inputs = body.get("outputs"), body.get("inputs")
    if isinstance(outputs, list) and outputs and all(_is_tensor(t) for t in outputs):
        return "kserve_v2_response"
    if isinstance(inputs, list) and inputs and all(_is_tensor(t) for t in inputs):
        return "kserve_v2_request"
    if "predictions" in body:
        return "response"
    if any(key in body for key in _REQUEST_KEYS):
        return "request"
    return None


# --------------------------------------------------------------------------- scores


def response_scores(resp: Any, *, positive: Positive = None, output_name: str | None = None
                    ) -> tuple[list[Given | Problem], dict[str, Given], str | None]:
    """The score of each row of a response, the model name/version it states, its id."""
    kind = "response" if isinstance(resp, list) else detect(resp)
    if kind == "kserve_v2_response":
        return _v2_scores(resp, positive, output_name)
    if kind != "response":
        shown = ", ".join(map(str, list(resp)[:10])) if isinstance(resp, dict) else type(resp).__name__
        what = ("a request body, not a response: pass the response as the file and the "
                "request as --inputs") if kind in ("request", "kserve_v2_request") else (
                f"not a model-server response (has: {clip(shown)}); expected "
                "{\"predictions\": [...]} (MLflow, KServe V1) or {\"outputs\": [...]} (KServe V2)")
        raise InvalidInputError(what, field="response", location="response")
    key = positive if isinstance(positive, str) and not positive.lstrip("-").isdigit() else None
    items, path = _predictions(resp, key)
    scores = [_item_score(item, f"{path}[{i}]" if path else f"[{i}]", positive)
              for i, item in enumerate(items)]
    return scores, {}, None


def _index(positive: Positive, width: int) -> int | None:
    """The column of ``positive`` in a row of ``width`` probabilities (default: the last)."""
    if positive is None:
        return width - 1
    if isinstance(positive, int) or positive.lstrip("-").isdigit():
        index = int(positive)
        return index if 0 <= index < width else None
    return None


def _item_score(item: Any, path: str, positive: Positive) -> Given | Problem:
    if isinstance(item, dict):
        if positive is not None and str(positive) in item:  # an object keyed by class
            return _item_score(item[str(positive)], f"{path}.{positive}", None)
        for key in (*_SCORE_KEYS, *(() if positive is not None else _POSITIVE_NAMES)):
            if key in item and not isinstance(item[key], dict):
                inner = positive if key in _SCORE_KEYS else None
                return _item_score(item[key], f"{path}.{key}", inner)
        numeric = [k for k, v in item.items() if isinstance(v, int | float)
                   and not isinstance(v, bool)]
        if positive is None and numeric and len(numeric) == len(item):
            return Given(item[numeric[-1]], f"{path}.{numeric[-1]}")  # the last class
        wanted = repr(str(positive)) if positive is not None else "score or a class key"
        return Problem("score", path, f"has no {wanted}; its keys: "
                                      f"{clip(', '.join(map(str, item)))}", item)
    if isinstance(item, list):
        if not item:
            return Problem("score", path, "is an empty list: no class probabilities", item)
        if len(item) == 1:
            return Given(item[0], f"{path}[0]")
        index = _index(positive, len(item))
        if index is None:
            return Problem("score", path, f"has {len(item)} class probabilities; the positive "
                                          f"class {positive!r} is not an index of them "
                                          f"(0 to {len(item) - 1})", item)
        return Given(item[index], f"{path}[{index}]")
    return Given(item, path)


def _v2_scores(resp: dict[str, Any], positive: Positive, output_name: str | None
               ) -> tuple[list[Given | Problem], dict[str, Given], str | None]:
    if output_name is None:  # a probability tensor over a label tensor (predict_proba)
        floats = [t.get("name") for t in resp["outputs"] if str(t.get("datatype")).startswith("FP")]
        output_name = floats[0] if floats else None
    index, output = _pick_output(resp, output_name)
    path = f"outputs[{index}]"
    if output.get("datatype") not in _NUMERIC:
        raise InvalidInputError(f"is {clip(output.get('datatype'))}; a score needs a numeric "
                                "datatype (FP32, FP64, INT64…)", field=f"{path}.datatype",
                                location="response")
    shape = _shape(output.get("shape"), f"{path}.shape", "response")
    data = _data(output.get("data"), shape, f"{path}.data", "response")
    count, width = shape[0], shape[1] if len(shape) == 2 else 1
    classes = (output.get("parameters") or {}).get("classes") if isinstance(
        output.get("parameters"), dict) else None
    column: int | None = 0
    if width > 1:
        if isinstance(positive, str) and isinstance(classes, list) and positive in map(str, classes):
            column = [str(c) for c in classes].index(positive)
        else:
            column = _index(positive, width)
        if column is None:
            raise InvalidInputError(f"is {shape}: {width} classes, and the positive class "
                                    f"{positive!r} is not an index of them (0 to {width - 1})",
                                    field="positive_class", location=f"response {path}")
    scores: list[Given | Problem] = list(tensor_scores(output, data, path, count, width,
                                                       column))
    fallback = {target: Given(resp[key], key) for target, key in
                (("model", "model_name"), ("model_version", "model_version"))
                if isinstance(resp.get(key), str) and resp[key].strip()}
    response_id = resp.get("id") if isinstance(resp.get("id"), str) else None
    return scores, fallback, (response_id or "").strip() or None


# --------------------------------------------------------------------------- join


def iter_scored(response: Body, inputs: str | os.PathLike[str] | Body | None = None, *,
                mapping: FieldMapping, entity_column: str = "entity_id",
                entity_ids: Sequence[Any] | None = None, positive: Positive = None,
                output_name: str | None = None,
                observed_at: datetime | str | float | None = None,
                limits: SourceLimits | None = None, batch_rows: int | None = 5000
                ) -> Iterator[SourceBatch]:
    """Join ``response`` (any shape above) with ``inputs`` (a table path, a request
    body, or rows) by row order; entity ids come from ``entity_column`` of the inputs, or
    from ``entity_ids``. Whole-input problems raise ``InvalidInputError`` before any
    chunk: a row-count mismatch, a missing entity column, a required field that neither
    the inputs, the response nor the mapping's defaults provide."""
    limits = limits or SourceLimits()
    resp = load_body(response, what="response", limits=limits)
    scores, fallback, response_id = response_scores(resp, positive=positive,
                                                    output_name=output_name)
    if len(scores) > limits.max_rows:  # refused before any chunk is stored
        raise limits.too_many_rows("response", len(scores))
    _same_problem_everywhere(scores, "score" if positive is None else "positive_class")
    if isinstance(entity_ids, str):
        raise InvalidInputError("must be a list of ids, not one string", field="entity_ids")
    if inputs is None and entity_ids is None:
        raise InvalidInputError("the response carries scores only: give the scored input "
                                "(a table or the request body) or the entity ids",
                                field="inputs")
    if inputs is None:
        rows, name = [{INDEX_COLUMN: i} for i in range(len(entity_ids or []))], "entity_ids"
    elif isinstance(inputs, list) and all(isinstance(r, dict) for r in inputs):
        rows, name = [{**r, INDEX_COLUMN: r.get(INDEX_COLUMN, i)} for i, r in enumerate(inputs)], \
            "inputs"
    else:
        rows, name = read_inputs(inputs, limits=limits)
    if entity_ids is not None and len(entity_ids) != len(scores):
        raise InvalidInputError(f"has {len(entity_ids)} ids but the response has "
                                f"{len(scores)} scores", field="entity_ids")
    if len(rows) != len(scores):
        raise InvalidInputError(f"{name} has {len(rows)} rows but the response has "
                                f"{len(scores)} scores; they are joined by row order, so "
                                "they must match", field="inputs", input_rows=len(rows),
                                response_rows=len(scores))
    if entity_ids is not None:
        entities = [Given(e, f"entity_ids[{i}]") for i, e in enumerate(entity_ids)]
    else:
        columns = {k for r in rows[:1000] for k in r}
        if rows and entity_column not in columns:
            shown = ", ".join(sorted(c for c in columns if c != INDEX_COLUMN))[:300]
            raise InvalidInputError(f"no column {entity_column!r} in {name}; it has: {shown} "
                                    f"(or {INDEX_COLUMN} for the row's index)",
                                    field="entity_column")
        entities = [Given(r.get(entity_column), f"{name}[{i}].{entity_column}")
                    for i, r in enumerate(rows)]
    mapping = _joined_mapping(mapping, rows, entity_column, fallback)
    return join(rows, entities, scores, mapping, limits=limits,
                location=f"response joined to {name}", fallback=fallback,
                observed_at=resolve_observed_at(observed_at, mapping),
                response_id=response_id, batch_rows=batch_rows,
                body_digest=fingerprint(resp, rows, list(entity_ids or [])))


def _same_problem_everywhere(scores: list[Given | Problem], field: str) -> None:
    """Every score failing alike is an option's fault (a class that is not there), not
    the rows': said once, not once per row."""
    problems = {p.message.split(";")[0] for p in scores if isinstance(p, Problem)}
    if len(scores) > 1 and len(problems) == 1 and all(isinstance(p, Problem) for p in scores):
        first = scores[0]
        assert isinstance(first, Problem)
        raise InvalidInputError(f"every row's score failed: {first.source}: {first.message}",
                                field=field, location="response")


def _joined_mapping(mapping: FieldMapping, rows: list[dict[str, Any]], entity_column: str,
                    fallback: dict[str, Given]) -> FieldMapping:
    """Check what the rows cannot supply once (not once per row); the joined columns
    become features unless the mapping picks some."""
    columns = list(dict.fromkeys(k for r in rows[:1000] for k in r))
    for target in ("model", "kind", "entity_type"):
        column = mapping.column(target)
        if target in mapping.defaults or target in fallback or (column and column in columns):
            continue
        raise InvalidInputError(f"no value for {target}: the response does not state it and "
                                f"the inputs have no {column!r} column; give a default "
                                f"(--{target.replace('_', '-')} or defaults.{target})",
                                field=target)
    value_column = mapping.column("value_at_stake")
    if "value_at_stake" in mapping.explicit_columns and value_column not in columns:
        raise InvalidInputError(f"no column {value_column!r} in the inputs; it has: "
                                + ", ".join(c for c in columns if c != INDEX_COLUMN)[:300],
                                field="value_at_stake")
    if mapping.feature_columns:
        return mapping
    features = [c for c in columns if c not in (entity_column, INDEX_COLUMN)][:_MAX_FEATURES]
    return mapping.model_copy(update={"feature_columns": tuple(features)})


def parse_scored(response: Body, inputs: str | os.PathLike[str] | Body | None = None,
                 **options: Any) -> SourceBatch:
    """``iter_scored`` read whole into one ``SourceBatch`` (the same options)."""
    return collect(iter_scored(response, inputs, **options, batch_rows=None))

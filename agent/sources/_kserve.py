"""Open Inference Protocol (KServe V2, Triton, Seldon MLServer) ``infer`` bodies onto
``SourceBatch``.

Response: ``{"model_name", "model_version", "id", "outputs": [{"name", "shape",
"datatype", "data"}]}`` with the score tensor of shape ``[n]`` or ``[n, k]`` (data flat,
row-major). Entity ids come from a ``BYTES`` input tensor of the request, or are passed
in. Other ``[n]``/``[n, 1]`` request inputs are columns for the mapping
(``feature_columns``, ``value_at_stake``…). Errors name the JSON path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources._batch import SourceBatch, SourceLimits, clip, collect
from decisionops.agent.sources._bodies import Body, fingerprint, join, load_body, resolve_observed_at
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._rows import Given, decimal_of

__all__ = ["iter_kserve_v2", "parse_kserve_v2"]

_NUMERIC = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                      "FP16", "FP32", "FP64"})


def iter_kserve_v2(response: Body, request: Body | None = None, *, mapping: FieldMapping,
                    entity_input: str = "entity_id", entity_ids: Sequence[str] | None = None,
                    output_name: str | None = None, positive_index: int = 1,
                    observed_at: datetime | str | float | None = None,
                    limits: SourceLimits | None = None, batch_rows: int | None = 5000
                 ) -> Iterator[SourceBatch]:
    """Join a V2 ``infer`` response to entity ids.

    The output tensor is ``output_name`` (default: the first); for ``[n, k]`` with
    ``k > 1`` column ``positive_index`` is the score. ``model_name``/``model_version``
    of the response apply unless the mapping's defaults set them. Ids, when the request
    carries none, derive from model, version, the response ``id``, entity and time, so
    a re-delivered response maps onto the same ids.
    """
    limits = limits or SourceLimits()
    resp = load_body(response, what="response", limits=limits)
    if not isinstance(resp, dict):
        raise InvalidInputError("must be a JSON object", location="response")
    index, output = _pick_output(resp, output_name)
    path = f"outputs[{index}]"
    shape = _shape(output.get("shape"), f"{path}.shape", "response")
    if output.get("datatype") not in _NUMERIC:
        raise InvalidInputError(f"is {clip(output.get('datatype'))}; a score needs a numeric "
                                "datatype (FP32, FP64, INT64…)", field=f"{path}.datatype",
                                location="response")
    data = _data(output.get("data"), shape, f"{path}.data", "response")
    count, width = shape[0], shape[1] if len(shape) == 2 else 1
    column = 0 if width == 1 else positive_index
    if not 0 <= column < width:
        raise InvalidInputError(f"is {shape}: {width} columns, so positive_index "
                                f"{positive_index} is out of range", field=f"{path}.shape",
                                location="response")
    scores = tensor_scores(output, data, path, count, width, column)

    req = load_body(request, what="request", limits=limits) if request is not None else None
    rows, entities = _request_columns(req, entity_input, entity_ids, count)
    if len(entities) != count:
        raise InvalidInputError(f"the response has {count} rows but there are {len(entities)} "
                                "entity ids", field=f"{path}.shape", location="response",
                                response_rows=count, entity_ids=len(entities))
    fallback = {target: Given(resp[key], key) for target, key in
                (("model", "model_name"), ("model_version", "model_version"))
                if isinstance(resp.get(key), str) and resp[key].strip()}
    response_id = resp.get("id") if isinstance(resp.get("id"), str) else None
    return join(rows, entities, scores, mapping, limits=limits, location="kserve v2 response",
                fallback=fallback, observed_at=resolve_observed_at(observed_at, mapping),
                response_id=(response_id or "").strip() or None,
                batch_rows=batch_rows, body_digest=fingerprint(resp, req, list(entity_ids or [])))


def tensor_scores(output: dict[str, Any], data: list[Any], path: str, count: int, width: int,
                  column: int) -> list[Given]:
    """Column ``column`` of an output tensor's ``count`` rows, each named by its place.
    FP32/FP16 values are that precision's numbers written out as doubles (0.65 as
    0.6499999761581421, as Triton writes them): read at their decimal meaning, as a
    float32 Parquet column is (trial 25: "score 0.65 < 0.65")."""
    precision = {"FP32": "f", "FP16": "e"}.get(output.get("datatype"))  # type: ignore[arg-type]
    out = []
    for r in range(count):
        value = data[r * width + column]
        out.append(Given(decimal_of(value, precision) if precision else value,
                         f"{path}.data[{r * width + column}]"))
    return out


def _pick_output(resp: dict[str, Any], name: str | None) -> tuple[int, dict[str, Any]]:
    outputs = resp.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise InvalidInputError("must be a non-empty list of tensors", field="outputs",
                                location="response")
    for i, tensor in enumerate(outputs):
        if not isinstance(tensor, dict):
            raise InvalidInputError("must be a tensor object", field=f"outputs[{i}]",
                                    location="response")
    if name is None:
        return 0, outputs[0]
    for i, tensor in enumerate(outputs):
        if tensor.get("name") == name:
            return i, tensor
    names = ", ".join(clip(t.get("name"), 40) for t in outputs[:20])
    raise InvalidInputError(f"no output named {name!r}; outputs: {names}",
                            field="output_name", location="response")


def _shape(value: Any, field: str, where: str, *, columns: bool = True) -> list[int]:
    """``[n]`` or ``[n, k]`` (``[n, 1]`` only, when not ``columns``) of non-negative ints."""
    ok = (isinstance(value, list) and len(value) in (1, 2)
          and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
          and (len(value) == 1 or value[1] >= 1) and (columns or len(value) == 1 or value[1] == 1))
    if not ok:
        wanted = "[n] or [n, k]" if columns else "[n] or [n, 1]"
        raise InvalidInputError(f"must be {wanted}; got {clip(value)}", field=field,
                                location=where)
    return value


def _data(value: Any, shape: list[int], field: str, where: str) -> list[Any]:
    """The tensor's values, flat (some servers nest them by row)."""
    if not isinstance(value, list):
        raise InvalidInputError("must be a list", field=field, location=where)
    flat = value
    if any(isinstance(v, list) for v in value):
        flat = [x for v in value for x in (v if isinstance(v, list) else [v])]
    needed = math.prod(shape)
    if len(flat) != needed:
        raise InvalidInputError(f"has {len(flat)} values; shape {shape} needs {needed}",
                                field=field, location=where)
    return flat


def _request_columns(req: Any, entity_input: str, entity_ids: Sequence[str] | None,
                     count: int) -> tuple[list[dict[str, Any]], list[Given]]:
    """Per-row request columns (from ``[n]``/``[n, 1]`` input tensors) and entity ids."""
    if isinstance(entity_ids, str):
        raise InvalidInputError("must be a list of ids, not one string", field="entity_ids")
    if req is None:
        if entity_ids is None:
            raise InvalidInputError(f"pass the request (with a BYTES input named "
                                    f"{entity_input!r}) or entity_ids", field="entity_ids")
        return ([{} for _ in entity_ids],
                [Given(e, f"entity_ids[{i}]") for i, e in enumerate(entity_ids)])
    inputs = req.get("inputs") if isinstance(req, dict) else None
    if not isinstance(inputs, list):
        raise InvalidInputError("must be a list of tensors", field="inputs", location="request")
    columns: dict[str, list[Any]] = {}
    entities: list[Given] | None = None
    for j, tensor in enumerate(inputs):
        path = f"inputs[{j}]"
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInputError("must be a tensor object with a name", field=path,
                                    location="request")
        name = tensor["name"]
        if name == entity_input and entity_ids is None:
            if tensor.get("datatype") != "BYTES":
                raise InvalidInputError(f"is {clip(tensor.get('datatype'))}; entity ids must "
                                        "be BYTES", field=f"{path}.datatype", location="request")
            shape = _shape(tensor.get("shape"), f"{path}.shape", "request", columns=False)
            data = _data(tensor.get("data"), shape, f"{path}.data", "request")
            entities = [Given(e, f"request.{path}.data[{i}]") for i, e in enumerate(data)]
            continue
        shape = tensor.get("shape")
        if (isinstance(shape, list) and shape[:1] == [count] and shape[1:] in ([], [1])
                and isinstance(tensor.get("data"), list)):
            try:
                columns[name] = _data(tensor["data"], shape, f"{path}.data", "request")
            except InvalidInputError:
                continue  # not a per-row column; the model's own input matrices are not ours
    if entity_ids is not None:
        entities = [Given(e, f"entity_ids[{i}]") for i, e in enumerate(entity_ids)]
    if entities is None:
        names = ", ".join(clip(t.get("name"), 40) for t in inputs[:20])
        raise InvalidInputError(f"no input named {entity_input!r}; inputs: {names}",
                                field="inputs", location="request")
    if len(entities) != count:
        return [{} for _ in entities], entities  # the caller reports the mismatch
    return [{name: col[i] for name, col in columns.items()} for i in range(count)], entities


def parse_kserve_v2(response: Body, request: Body | None = None, **options: Any) -> SourceBatch:
    """``iter_kserve_v2`` read whole into one ``SourceBatch`` (the same options)."""
    return collect(iter_kserve_v2(response, request, **options, batch_rows=None))

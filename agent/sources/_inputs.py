"""The scored input of a model-server response as rows (column → value), to join by row
order: a CSV/TSV, JSONL or Parquet table, or the request body itself (MLflow
``dataframe_split``/``dataframe_records``/``inputs``/``instances``, KServe V1
``instances``, V2 ``inputs`` tensors). Every row carries ``@index`` (the
``dataframe_split`` index, else its 0-based position); unnamed values are columns ``0``,
``1``…; a V2 ``[n, k]`` tensor is columns ``name_0`` … ``name_{k-1}``. The join itself
lives in ``_serving``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources._batch import SourceLimits
from decisionops.agent.sources._bodies import Body, load_body
from decisionops.agent.sources._kserve import _data, _shape
from decisionops.agent.sources._mlflow import INDEX_COLUMN, _request_rows
from decisionops.agent.sources._rows import _cell_scalar, decimal_floats

__all__ = ["detect_tensor_request", "read_inputs", "request_rows"]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and "name" in value and "datatype" in value and "data" in value


def detect_tensor_request(body: Any) -> bool:
    """Whether ``body`` is a V2 request (named input tensors)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    return isinstance(inputs, list) and bool(inputs) and all(_is_tensor(t) for t in inputs)


def read_inputs(source: str | os.PathLike[str] | Body, *, limits: SourceLimits
                ) -> tuple[list[dict[str, Any]], str]:
    """The scored input as rows (column → value) and the name used in messages: a path
    to a CSV/TSV, JSONL, Parquet or JSON request body, or a request body itself."""
    if isinstance(source, str | os.PathLike) and not (
            isinstance(source, str) and source.lstrip()[:1] in ("{", "[")):
        path = Path(source)
        return _read_table(path, limits), path.name
    return request_rows(load_body(source, what="inputs", limits=limits)), "inputs"


def request_rows(body: Any) -> list[dict[str, Any]]:
    """The rows of a request body (any of the shapes in the module docstring), each with
    ``@index``; unnamed values are columns ``0``, ``1``…"""
    if detect_tensor_request(body):
        rows = _tensor_rows(body["inputs"])
    elif isinstance(body, list) and body and all(isinstance(r, dict) for r in body):
        rows = [dict(r) for r in body]
    else:
        if isinstance(body, dict):
            for key in ("instances", "inputs"):
                value = body.get(key)
                if isinstance(value, list) and not all(isinstance(r, dict) for r in value):
                    body = {key: [_unnamed(v) for v in value]}  # KServe V1, MLflow tensors
        rows, _ = _request_rows(body)
    for i, row in enumerate(rows):
        row.setdefault(INDEX_COLUMN, i)
    return rows


def _unnamed(values: Any) -> dict[str, Any]:
    if isinstance(values, list):
        return {str(j): v for j, v in enumerate(values)}
    return {"0": values}


def _tensor_rows(tensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """V2 input tensors as rows: ``[n]``/``[n, 1]`` → column ``name``; ``[n, k]`` →
    columns ``name_0`` … ``name_{k-1}``."""
    columns: dict[str, list[Any]] = {}
    count: int | None = None
    for j, tensor in enumerate(tensors):
        path = f"inputs[{j}]"
        shape = _shape(tensor.get("shape"), f"{path}.shape", "inputs")
        data = _data(tensor.get("data"), shape, f"{path}.data", "inputs")
        if count is not None and shape[0] != count:
            raise InvalidInputError(f"has {shape[0]} rows; inputs[0] has {count}",
                                    field=f"{path}.shape", location="inputs")
        count, width, name = shape[0], (shape[1] if len(shape) == 2 else 1), str(tensor["name"])
        if width == 1:
            columns[name] = data
        else:
            for k in range(width):
                columns[f"{name}_{k}"] = data[k::width]
    return [{name: col[i] for name, col in columns.items()} for i in range(count or 0)]


def _read_table(path: Path, limits: SourceLimits) -> list[dict[str, Any]]:
    """A CSV/TSV, JSONL or Parquet table, or a JSON request body, as rows."""
    location = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror or exc}", field="inputs",
                                location=location) from exc
    if size > limits.max_bytes:
        raise limits.too_large(location, size, field="inputs")
    suffix = path.suffix.lower()
    with open(path, "rb") as handle:
        if handle.read(4) == b"PAR1" or suffix in (".parquet", ".pq"):
            rows = _parquet_rows(path, location)
            return _bounded(rows, limits, location)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (bad byte at offset {exc.start})",
                                field="inputs", location=location) from exc
    stripped = text.lstrip()
    if suffix in (".csv", ".tsv") or not stripped.startswith(("{", "[")):
        return _bounded(_csv_rows(text, "\t" if suffix == ".tsv" else ",", location),
                        limits, location)
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if whole is not None and _is_request(whole):
        return _bounded(request_rows(whole), limits, location)
    rows = []
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise InvalidInputError(f"line {line} is not valid JSON: {exc}", field="inputs",
                                    location=location, line=line) from exc
        if not isinstance(record, dict):
            raise InvalidInputError(f"line {line} must be a JSON object", field="inputs",
                                    location=location, line=line)
        rows.append({**record, INDEX_COLUMN: len(rows)})
    return _bounded(rows, limits, location)


def _csv_rows(text: str, delimiter: str, location: str) -> list[dict[str, Any]]:
    """CSV rows, numbers as numbers. A blank line inside the file is a row of empty
    values (one-column files write an empty value so): skipping it would shift every
    later row onto the wrong score. Blank lines at the end are not rows."""
    # The text as one stream: split into lines first, a quoted cell's line break was lost
    # ("ACC\n10003" became ACC10003: trial 29), where every other path keeps and refuses it.
    cells = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    while cells and not any(c.strip() for c in cells[-1]):
        cells.pop()
    if not cells:
        return []
    header = [h.strip() for h in cells[0]]
    rows = []
    for i, values in enumerate(cells[1:]):
        if values and len(values) != len(header):
            raise InvalidInputError(f"line {i + 2} has {len(values)} cells; the header has "
                                    f"{len(header)}", field="inputs", location=location,
                                    line=i + 2)
        row: dict[str, Any] = {name: None for name in header}
        for name, value in zip(header, values, strict=False):
            row[name] = _cell_scalar(value) if value.strip() else None
        row[INDEX_COLUMN] = i
        rows.append(row)
    return rows


def _parquet_rows(path: Path, location: str) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"not a readable Parquet file: {exc}", field="inputs",
                                location=location) from exc
    return [{**row, INDEX_COLUMN: i} for i, row in enumerate(decimal_floats(table).to_pylist())]


def _bounded(rows: list[dict[str, Any]], limits: SourceLimits, location: str
             ) -> list[dict[str, Any]]:
    if len(rows) > limits.max_rows:
        raise limits.too_many_rows(location, len(rows), field="inputs")
    return rows


def _is_request(body: Any) -> bool:
    keys = ("dataframe_split", "dataframe_records", "instances", "inputs")
    return (isinstance(body, list) and all(isinstance(r, dict) for r in body)) or (
        isinstance(body, dict) and any(k in body for k in keys))

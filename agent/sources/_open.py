"""One file in, chunks of predictions out, whatever it holds: the single place that
decides how a path is read (the CLI's ``ingest`` and the drop folder use it through
``_parallel.iter_prepared``).

``auto`` goes by suffix and content: Parquet and CSV by suffix or first bytes; a JSON
document that is a model-server response (MLflow or KServe V1 ``predictions``, KServe V2
``outputs``) is joined to its scored ``inputs`` (``_serving``); other JSON is JSON Lines
of prediction records. A model-server request given where the response belongs is named
as such. Reading the formats themselves lives in ``_files`` and ``_serving``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources._batch import SourceBatch, SourceLimits
from decisionops.agent.sources._files import is_native_body, iter_file
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._serving import Positive, detect, iter_scored

__all__ = ["FORMATS", "InputFormat", "ServingJoin", "iter_input", "resolve_format"]

InputFormat = Literal["auto", "csv", "jsonl", "json", "parquet", "mlflow", "kserve"]
FORMATS: tuple[str, ...] = ("auto", "csv", "jsonl", "json", "parquet", "mlflow", "kserve")
_TABLES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SNIFF = 1 << 20


class ServingJoin(BaseModel):
    """How a model-server response finds its entities and columns: the scored input (a
    table path or a request body), or the entity ids themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    inputs: Any = None
    """A CSV/TSV/JSONL/Parquet path, a request body path, or a parsed request body."""
    entity_column: str = "entity_id"
    """The inputs column of entity ids; ``@index``: the request index or row position."""
    entity_ids: Sequence[Any] | None = None
    positive: Positive = None
    output_name: str | None = None


def resolve_format(path: str | os.PathLike[str], fmt: str, limits: SourceLimits) -> str:
    """``csv``, ``jsonl``, ``parquet`` or ``serving`` for ``path`` read as ``fmt``."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"{fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    if fmt in ("mlflow", "kserve"):
        return "serving"
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in _TABLES:
        return _TABLES[suffix]
    try:
        with open(path, "rb") as handle:
            start = handle.read(_SNIFF)
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror or exc}",
                                location=os.fspath(path)) from exc
    if start.startswith(b"PAR1"):
        return "parquet"
    text = start.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not text:  # nothing but blanks: what its name says it is (no rows in either)
        return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}.get(suffix, "csv")
    if not text.startswith(("{", "[")):
        return "csv"
    if text.startswith("{") and _native(Path(path), limits):
        return "json"  # the API's own body, saved
    kind = _body_kind(Path(path), text, limits)
    if kind in ("request", "kserve_v2_request"):
        raise InvalidInputError(
            f"{Path(path).name} is a model-server request (what was sent to be scored); "
            "ingest the response and pass this file as --inputs", field="path",
            location=os.fspath(path))
    if kind is not None:
        return "serving"
    # An array is one document (rows are never arrays in JSON Lines): its elements.
    return "json" if text.startswith("[") else "jsonl"


def _native(path: Path, limits: SourceLimits) -> bool:
    """Whether the file is the body ``POST /v1/predictions`` takes (``is_native_body``)."""
    if path.stat().st_size > limits.max_bytes:
        return False
    try:
        return is_native_body(json.loads(path.read_bytes()))
    except (ValueError, RecursionError):
        return False


def _body_kind(path: Path, start: str, limits: SourceLimits) -> str | None:
    """What a JSON file is: one line that is a whole object, or a whole document (a
    pretty-printed body is not JSON Lines anyway)."""
    first = start.split("\n", 1)[0]
    try:
        return detect(json.loads(first)) if first.strip().startswith(("{", "[")) else None
    except ValueError:
        pass
    if path.stat().st_size > limits.max_bytes:
        return None
    try:
        return detect(json.loads(path.read_bytes()))
    except ValueError:
        return None


def iter_input(path: str | os.PathLike[str], fmt: str = "auto",
               mapping: FieldMapping | None = None, *, join: ServingJoin | None = None,
               limits: SourceLimits | None = None, batch_rows: int | None = 5000
               ) -> Iterator[SourceBatch]:
    """Chunks of predictions from ``path`` (see the module docstring). Whole-input
    problems raise ``InvalidInputError`` before the first chunk."""
    limits = limits or SourceLimits()
    mapping = mapping or FieldMapping()
    chosen = resolve_format(path, fmt, limits)
    join = join or ServingJoin()
    if chosen != "serving":
        if join.inputs is not None or join.entity_ids is not None:
            raise InvalidInputError(f"joins a model-server response to its inputs; "
                                    f"{Path(path).name} is a {chosen} file of predictions",
                                    field="inputs")
        return iter_file(path, chosen, mapping, limits=limits,  # type: ignore[arg-type]
                         batch_rows=batch_rows)
    size = Path(path).stat().st_size
    if size > limits.max_bytes:
        raise limits.too_large(os.fspath(path), size)
    return iter_scored(Path(path).read_bytes(), join.inputs, mapping=mapping,
                       entity_column=join.entity_column, entity_ids=join.entity_ids,
                       positive=join.positive, output_name=join.output_name, limits=limits,
                       batch_rows=batch_rows)

"""The retraining export: one row per treated or control prediction and outcome, with the
prediction's features, as Parquet or CSV.

A prediction with several outcomes gives one row per outcome; one without an outcome
yet gives one row with empty outcome columns. ``arm`` is ``treated`` or ``control`` and
``control`` flags the held-out rows, so a model can be retrained on the untreated
population or with the treatment as a feature. Features become ``feature_<name>``
columns; the explanation is kept as a JSON string.

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) are neutralized by a leading ``'``; numbers
are written as numbers. Parquet keeps the values as they are (typed columns).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from decisionops.agent.report._figures import SUCCESS_LABELS
from decisionops.agent.store import Store

__all__ = ["ExportFormat", "export_rows", "neutralize", "write_export"]

ExportFormat = Literal["parquet", "csv"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("prediction_id", "string"), ("kind", "string"), ("entity_type", "string"),
    ("entity_id", "string"), ("model", "string"), ("model_version", "string"),
    ("score", "float"), ("value_at_stake", "float"), ("expected_value", "float"),
    ("currency", "string"), ("predicted_at", "time"), ("arm", "string"), ("control", "bool"),
    ("triage_action", "string"), ("triage_reason", "string"), ("decision_id", "string"),
    ("decision_status", "string"), ("playbook", "string"), ("outcome_id", "string"),
    ("outcome_label", "string"), ("outcome_success", "bool"), ("value_realized", "float"),
    ("outcome_observed_at", "time"), ("outcome_latest", "bool"), ("outcome_source", "string"),
    ("simulated", "bool"),
    ("explanation", "string"),
)


def neutralize(cell: str) -> str:
    """Text a spreadsheet would evaluate, made inert with a leading apostrophe."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def export_rows(store: Store, *, since: datetime | None = None,
                success_labels: Sequence[str] = SUCCESS_LABELS
                ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The rows and their columns (name, type), feature columns last, sorted."""
    success = set(success_labels)
    rows, features = [], set()
    for r in store.outcomes.training_rows(since=since):
        payload = r["payload"]
        arm = r["arm"] or ("treated" if r["decision_id"] else "control")
        row = {"prediction_id": r["prediction_id"], "kind": payload["kind"],
               "entity_type": payload["entity_type"], "entity_id": payload["entity_id"],
               "model": payload["model"], "model_version": payload["model_version"],
               "score": payload["score"], "value_at_stake": payload.get("value_at_stake"),
               "expected_value": r["expected_value"] if r["expected_value"] is not None
               else r["prediction_expected_value"],
               "currency": payload.get("currency"),
               "predicted_at": datetime.fromisoformat(payload["observed_at"]),
               "arm": arm, "control": arm == "control", "triage_action": r["triage_action"],
               "triage_reason": r["triage_reason"], "decision_id": r["decision_id"],
               "decision_status": r["decision_status"], "playbook": r["playbook"],
               "outcome_id": r["outcome_id"], "outcome_label": r["label"],
               "outcome_success": None if r["label"] is None else r["label"] in success,
               "value_realized": r["value_realized"],
               "outcome_observed_at": r["outcome_observed_at"],
               "outcome_source": r["outcome_source"],
               "simulated": None if r["outcome_source"] is None
               else r["outcome_source"].startswith("simulated"),
               "explanation": json.dumps(payload.get("explanation") or {}, sort_keys=True)}
        for key, value in (payload.get("features") or {}).items():
            row[f"feature_{key}"] = value
            features.add(f"feature_{key}")
        rows.append(row)
    _mark_latest(rows)
    columns = list(_COLUMNS) + [(name, _feature_type([r.get(name) for r in rows]))
                                for name in sorted(features)]
    return rows, columns


def _mark_latest(rows: list[dict[str, Any]]) -> None:
    """``outcome_latest`` on each row: whether its outcome is its prediction's latest,
    the one the value report counts (observed last; of two at one time, the smaller id,
    as ``OutcomeRepo.outcome_list`` orders them); None on a row without an outcome."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        row["outcome_latest"] = None if row["outcome_id"] is None else False
        if row["outcome_id"] is None:
            continue
        best = latest.get(row["prediction_id"])
        if best is None or (row["outcome_observed_at"], _desc(row["outcome_id"])) > (
                best["outcome_observed_at"], _desc(best["outcome_id"])):
            latest[row["prediction_id"]] = row
    for row in latest.values():
        row["outcome_latest"] = True


def _desc(text: str) -> tuple[int, ...]:
    """A key that orders texts the other way round."""
    return (*(-ord(c) for c in text), 1)


def _feature_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool} and kinds:
        return "bool"
    if kinds <= {int} and kinds:
        return "int"
    if kinds <= {int, float} and kinds:
        return "float"
    return "string"  # text, or mixed types: written as text


def write_export(store: Store, out: str | os.PathLike[str], format: ExportFormat, *,
                 since: datetime | None = None,
                 success_labels: Sequence[str] = SUCCESS_LABELS) -> int:
    """Write the export to ``out`` (replaced atomically); return the number of rows."""
    rows, columns = export_rows(store, since=since, success_labels=success_labels)
    path = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if format == "parquet":
            _parquet(rows, columns, tmp)
        elif format == "csv":
            _csv(rows, columns, tmp)
        else:
            raise ValueError(f"unknown export format {format!r}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(rows)


def _csv_cell(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if kind == "string" or isinstance(value, str):
        return neutralize(value if isinstance(value, str) else json.dumps(value))
    return value


def _csv(rows: list[dict[str, Any]], columns: list[tuple[str, str]], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([neutralize(name) for name, _ in columns])
        for row in rows:
            writer.writerow([_csv_cell(row.get(name), kind) for name, kind in columns])


def _parquet(rows: list[dict[str, Any]], columns: list[tuple[str, str]], path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "float": pa.float64(), "int": pa.int64(),
             "bool": pa.bool_(), "time": pa.timestamp("us", tz="UTC")}
    arrays = []
    for name, kind in columns:
        values = [row.get(name) for row in rows]
        if kind == "string":
            values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        arrays.append(pa.array(values, type=types[kind]))
    table = pa.Table.from_arrays(arrays, schema=pa.schema([(n, types[k]) for n, k in columns]))
    pq.write_table(table, path)

"""Property: whatever text a CSV or JSONL file holds, reading it reports row errors and
never raises (whole-file refusals aside, which need an oversize file or a bad header)."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decisionops.agent.sources import FieldMapping, read_csv, read_jsonl

MAPPING = FieldMapping(defaults={"kind": "churn", "model": "m", "entity_type": "account"},
                       feature_columns=("feat_*",), explanation_prefix="shap_")
COLUMNS = ["id", "entity_id", "score", "observed_at", "value_at_stake", "currency",
           "features", "explanation", "feat_a", "shap_a"]
cell = st.one_of(st.text(max_size=40),
                 st.sampled_from(["nan", "inf", "-0", "1e999", "=1+2", "@x", "+1", "0.5",
                                  "2026-11-01T09:00:00Z", "1761987600", "{}", "[]", '{"a": 1}',
                                  '{"a": NaN}', "\x00", "\u202e", ""]))
rows = st.lists(st.lists(cell, min_size=0, max_size=len(COLUMNS) + 2), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_any_csv_cells_give_row_errors_not_crashes(data):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(data)
    batch = read_csv(io.StringIO(buffer.getvalue()), MAPPING)
    assert batch.rows_read <= len(data)
    assert len(batch.predictions) <= batch.rows_read
    for error in batch.errors:
        assert 1 <= error.row <= batch.rows_read and error.line is not None
        assert error.value is None or len(error.value) <= 80


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_any_text_after_a_header_never_crashes(text):
    batch = read_csv(io.StringIO(",".join(COLUMNS) + "\n" + text), MAPPING)
    assert len(batch.predictions) + len(batch.errors) >= 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=60), st.dictionaries(
    st.sampled_from(COLUMNS), st.one_of(st.none(), st.booleans(), st.integers(),
                                        st.floats(), st.text(max_size=20))).map(json.dumps)),
    max_size=6))
def test_any_jsonl_lines_never_crash(lines):
    batch = read_jsonl(io.StringIO("\n".join(lines)), MAPPING)
    assert len(batch.predictions) <= batch.rows_read

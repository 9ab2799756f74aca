"""Outcomes and value: recording what happened after a decision (or after a deliberate
non-decision in the holdout), measuring the uplift it made, and reporting it.

- outcomes in: :func:`record_outcomes` (parsed records: the API), :func:`import_outcome_file`
  (CSV/JSONL), :func:`import_outcome_sql` (a SELECT on another database). Each matches
  rows to decisions or control predictions by entity and window and reports every row it
  could not use (:class:`UnmatchedRow`); re-importing is a no-op.
- figures: :func:`build_report` → :class:`ReportData` (value captured, uplift with
  confidence intervals, approval latency, step success per tool, LLM cost).
- output: :func:`write_report` (self-contained HTML + PNG charts), :func:`render_text`
  (plain text for a terminal), :func:`write_export`
  (Parquet/CSV for retraining).
- ``agent.report.simulate``: simulated outcomes for the demo and tests, never imported here.

Persistence lives in ``agent.store`` (``outcome_records``); the CLI in ``agent.cli``.
"""

from decisionops.agent.report._export import ExportFormat, export_rows, neutralize, write_export
from decisionops.agent.report._figures import SUCCESS_LABELS, ReportData, build_report
from decisionops.agent.report._ingest import (
    DEFAULT_WINDOW,
    OutcomeImport,
    import_outcome_file,
    import_outcome_sql,
    record_outcomes,
    record_parsed,
)
from decisionops.agent.report._render import ReportFiles, render_html, write_report
from decisionops.agent.report._rows import (
    OutcomeFormat,
    OutcomeRow,
    UnmatchedRow,
    read_outcome_file,
    read_outcome_sql,
    success_labels,
)
from decisionops.agent.report._since import parse_since
from decisionops.agent.report._stats import CI_METHOD, Estimate, mean_uplift, percentile, rate_uplift
from decisionops.agent.report._text import render_text

__all__ = [
    "CI_METHOD",
    "DEFAULT_WINDOW",
    "SUCCESS_LABELS",
    "Estimate",
    "ExportFormat",
    "OutcomeFormat",
    "OutcomeImport",
    "OutcomeRow",
    "ReportData",
    "ReportFiles",
    "UnmatchedRow",
    "build_report",
    "export_rows",
    "import_outcome_file",
    "import_outcome_sql",
    "mean_uplift",
    "neutralize",
    "parse_since",
    "percentile",
    "rate_uplift",
    "read_outcome_file",
    "read_outcome_sql",
    "record_outcomes",
    "record_parsed",
    "render_html",
    "render_text",
    "success_labels",
    "write_export",
    "write_report",
]

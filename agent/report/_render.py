"""Writing the value report: one self-contained HTML file (charts embedded as base64
PNGs, styles inline, no external assets) and the same charts as PNG files beside it.

The page is the Jinja2 template ``templates/report.html`` with autoescaping on: every
value from the store (kinds, functions, tool names, labels) is data, never markup.
"""

from __future__ import annotations

import base64
import os
import tempfile
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from decisionops.agent.report._charts import CHARTS, render_charts
from decisionops.agent.report._figures import ReportData

__all__ = ["ReportFiles", "duration", "render_html", "write_report"]


class ReportFiles:
    """Where a report was written."""

    def __init__(self, html: Path, charts: dict[str, Path]) -> None:
        self.html = html
        self.charts = charts

    def all(self) -> list[Path]:
        return [self.html, *self.charts.values()]


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("decisionops.agent.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(money=_money, pct=_pct, pp=_pp, duration=duration, when=_when)
    return env


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _pp(value: float | None) -> str:
    """A difference of rates, in percentage points."""
    return "-" if value is None else f"{value * 100:+.1f} pp"


def duration(seconds: float | None) -> str:
    """A latency as people read it: 0.6 s, 42 s, 12 min, 3.5 h, 2.0 d (the text report's
    too)."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def render_html(data: ReportData, charts: dict[str, bytes]) -> str:
    """The report page with ``charts`` (name → PNG bytes) embedded."""
    images = {name: base64.b64encode(png).decode("ascii") for name, png in charts.items()}
    return _environment().get_template("report.html").render(
        data=data, images=images, chart_names=CHARTS)


def write_report(data: ReportData, out: str | os.PathLike[str]) -> ReportFiles:
    """Write ``out`` (HTML) and ``<stem>-<chart>.png`` beside it; each file replaces an
    older one atomically."""
    html_path = Path(out)
    charts = render_charts(data)
    paths = {name: html_path.with_name(f"{html_path.stem}-{name}.png") for name in charts}
    for name, png in charts.items():
        _atomic_write(paths[name], png)
    _atomic_write(html_path, render_html(data, charts).encode("utf-8"))
    return ReportFiles(html_path, paths)


def _atomic_write(path: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from its readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

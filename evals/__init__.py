"""Planner evaluation: scenario datasets, graders, a runner that scores any planner,
reports (terminal table, JSON, self-contained HTML), and a scripted OpenAI-compatible
server so LLM planners can be evaluated without a model.

Public surface::

    load_dataset(path) -> Dataset          bundled: default_dataset()
    run_eval(dataset, planners, settings=, live=) -> EvalReport
    print_report / write_json / write_html
    grade, POLICY, QUALITY                 the graders (documented in evals._graders)
    ScriptedServer, completion, call, error, raw, careful_model
"""

from importlib import resources
from pathlib import Path

from decisionops.evals._dataset import Case, Dataset, Expectation, Forbidden, TriageExpectation, load_dataset
from decisionops.evals._graders import POLICY, QUALITY, Grade, grade
from decisionops.evals._report import print_report, render_html, write_html, write_json
from decisionops.evals._runner import PLANNERS, CaseResult, EvalReport, PlannerScore, run_eval
from decisionops.evals.scripted import ScriptedServer, call, careful_model, completion, error, raw

__all__ = [
    "PLANNERS",
    "POLICY",
    "QUALITY",
    "Case",
    "CaseResult",
    "Dataset",
    "EvalReport",
    "Expectation",
    "Forbidden",
    "Grade",
    "PlannerScore",
    "ScriptedServer",
    "TriageExpectation",
    "call",
    "careful_model",
    "completion",
    "default_dataset",
    "error",
    "grade",
    "load_dataset",
    "print_report",
    "raw",
    "render_html",
    "run_eval",
    "write_html",
    "write_json",
]


def default_dataset() -> Path:
    """The bundled core dataset (``evals/datasets/core.yaml``)."""
    return Path(str(resources.files("decisionops.evals") / "datasets" / "core.yaml"))

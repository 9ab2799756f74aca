"""Outcomes and the value report over HTTP: record what happened after a decision, list
what was recorded, and the report's figures. ``agent.report`` owns every rule (how a row
is matched and checked, what the figures count, what a period and a success label are);
these routes translate, as ``decisionops outcomes add|list`` and ``decisionops report
--json`` do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from decisionops.agent.api._auth import Principal
from decisionops.agent.api._limits import StrictJSONRoute
from decisionops.agent.api._state import ServiceState, get_state, requires
from decisionops.agent.errors import ConflictError, InvalidInputError, NotFoundError
from decisionops.agent.models import utcnow
from decisionops.agent.report import (
    SUCCESS_LABELS,
    OutcomeRow,
    build_report,
    parse_since,
    record_parsed,
    success_labels,
)

__all__ = ["outcomes_router"]

_SINCE = ("Start of the period: a look-back (12h, 7d, 30d, 2w) or an ISO date or time")


def outcomes_router(principal: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["outcomes"], route_class=StrictJSONRoute)
    reporter = requires(principal, "report")

    @router.post("/outcomes", status_code=201, summary="Record what happened after a decision")
    def outcome(body: OutcomeRow, who: Principal = Depends(requires(principal, "outcomes")),
                state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        """One outcome, by decision id, prediction id (a held-out, control-group one), or
        kind and entity; matched, checked and recorded as ``decisionops outcomes add``
        records it (``agent.report.record_parsed``): the same refusals, each naming its
        field (404: nothing it names is known; 409: recorded before with another value)."""
        result = record_parsed(state.runtime.store, ([(1, None, body)], []), source="api",
                               actor=who.name)
        if result.unmatched:
            problem = result.unmatched[0]
            error = {"not_found": NotFoundError, "conflict": ConflictError}.get(
                problem.problem, InvalidInputError)
            raise error(problem.reason, field=problem.field)
        outcome_id = (result.recorded or result.duplicates)[0]
        subject = state.runtime.store.outcomes.outcome(outcome_id)
        return {"outcome_id": outcome_id, "decision_id": subject["decision_id"],
                "prediction_id": subject["prediction_id"], "arm": subject["arm"],
                "label": subject["label"], "recorded": bool(result.recorded)}

    @router.get("/outcomes", summary="Recorded outcomes, newest first")
    def list_outcomes(kind: str | None = Query(None, max_length=64),
                      arm: str | None = Query(None, pattern="^(treated|control)$",
                                              description="treated or control"),
                      since: str | None = Query(None, max_length=40, description=_SINCE),
                      limit: int = Query(50, ge=1, le=10_000),
                      _who: Principal = Depends(reporter),
                      state: ServiceState = Depends(get_state)) -> list[dict[str, Any]]:
        """As ``decisionops outcomes list --json``: each outcome with its subject (the
        decision, or the held-out prediction), arm, label, value realized, when observed,
        its source and who recorded it, and the prediction's score and value at stake."""
        start = _start(since) if since is not None else None
        return state.runtime.store.outcomes.outcome_list(since=start, kind=kind, arm=arm,  # type: ignore[arg-type]
                                                         limit=limit)

    @router.get("/report", summary="The value report's figures for a period")
    def report(since: str = Query("30d", max_length=40, description=_SINCE),
               success: list[str] | None = Query(
                   None, max_length=20, description="An outcome label that counts as success "
                   "(repeat it); default " + ", ".join(SUCCESS_LABELS)),
               _who: Principal = Depends(reporter),
               state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        """As ``decisionops report --json``: value captured (realized against expected),
        uplift over the control group with 95 % confidence intervals, approval latency per
        function, step success per tool, and LLM spend, from ``since`` to now."""
        start = _start(since)
        try:
            labels = success_labels(success) if success else list(SUCCESS_LABELS)
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="success") from None
        settings = state.runtime.settings
        warning = settings.uplift_warning
        data = build_report(state.runtime.store, since=start, success_labels=labels,
                            daily_spend_cap=settings.llm_daily_spend_cap,
                            warnings=[warning] if warning else [])
        return data.model_dump(mode="json")

    return router


def _start(since: str) -> Any:
    try:
        return parse_since(since, now=utcnow())
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="since") from None

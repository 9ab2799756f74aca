"""Bulk approve: an approver approves several low-risk requests in one go.

Each request still goes through ``ApprovalService.answer`` on its own, with every check
and the ledger record of every refusal; one request refused does not stop the others.
The one rule bulk adds is here: only requests whose steps are all at most their
function's ``bulk_max_risk`` (policy; default low, None: never) may be approved in bulk
(``not_for_bulk``, recorded like any other refusal); the rest are answered one at a time,
with their evidence in view.

Not here: how a channel lets people pick requests (the inbox's checkboxes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from decisionops.agent.errors import DecisionOpsError, InvalidInputError, NotFoundError
from decisionops.agent.models import Approve, Risk, Step

if TYPE_CHECKING:
    from decisionops.agent.approvals._identity import Approver
    from decisionops.agent.approvals._service import ApprovalService

__all__ = ["MAX_BULK", "BulkItem", "BulkOutcome", "approve_many",
           "not_for_bulk"]

MAX_BULK = 100
"""Requests one bulk approve may carry."""


@dataclass(frozen=True)
class BulkItem:
    approval_id: str
    plan_hash: str | None = None
    """The plan version the approver saw (a request whose plan moved on is refused)."""


@dataclass(frozen=True)
class BulkOutcome:
    approval_id: str
    status: Literal["approved", "edited", "proposed", "refused"]
    """What was recorded (``edited``: a four-eyes proposal approved), or ``refused``."""
    reason: str | None = None
    """The service's refusal code (``not_for_bulk``, ``replay``, ``stale_plan``…)."""
    message: str | None = None
    decision_id: str | None = None


def not_for_bulk(steps: Iterable[Step], max_risk: Risk | None) -> str | None:
    """Why a request with these steps cannot be approved in bulk under a ceiling of
    ``max_risk`` (its function's ``bulk_max_risk``), or None."""
    if max_risk is None:
        return "this function's policy takes no bulk approve; open it to answer on its own"
    for step in steps:
        if step.risk.rank > max_risk.rank:
            return (f"step {step.id} has risk {step.risk.value}: this function approves "
                    f"up to {max_risk.value}-risk requests in bulk; open it to answer on "
                    "its own")
    return None


_WHOLE = ("not_an_approver", "cli_refused")
"""Refusals about the answerer or the channel: each request would get the same."""


def approve_many(service: ApprovalService, items: Sequence[BulkItem], *, by: Approver,
                 comment: str = "") -> list[BulkOutcome]:
    """Approve each request in turn; one outcome per request, in order (a request
    selected twice is refused before any is answered)."""
    twice = [i for i, n in Counter(item.approval_id for item in items).items() if n > 1]
    if twice:
        raise InvalidInputError(f"{twice[0]} is selected more than once; select each request "
                                "once", field="approval_id")
    if not items:
        raise InvalidInputError("select at least one request", field="approval")
    if len(items) > MAX_BULK:
        raise InvalidInputError(f"{len(items)} requests selected; at most {MAX_BULK} at once",
                                field="approval")
    outcomes = []
    for item in items:
        try:
            service.check_bulk(item.approval_id, by=by)
            result = service.answer(item.approval_id, Approve(comment=comment), by=by,
                                    plan_hash=item.plan_hash)
        except DecisionOpsError as exc:
            if exc.details.get("reason") in _WHOLE:
                raise  # about who answers, not the request: the whole selection is refused
            reason = exc.details.get("reason") or (
                "not_found" if isinstance(exc, NotFoundError) else "invalid")
            outcomes.append(BulkOutcome(item.approval_id, "refused", str(reason), exc.message,
                                        decision_id=service.decision_of(item.approval_id, by)))
            continue
        outcomes.append(BulkOutcome(item.approval_id, result.status,  # type: ignore[arg-type]
                                    decision_id=result.decision_id))
    return outcomes

"""The approval protocol, owned here and nowhere else.

``ApprovalService`` decides who may answer a request (an ``Approver`` established by
the channel's credential), separation of duties (four-eyes), what an edit may change
(identity-bound targets, schemas, limits, totals), when a request expires and what
expiry means (``on_timeout``), reminders and escalation, operator holds, and how a plan
is routed (what policy approves on its own). ``Resolution`` is the one definition of
"approved" that the graph and the executor read.

The HTTP API, the web inbox, the human-in-the-loop endpoint and the CLI are adapters:
they turn their input into an ``Answer`` and an ``Approver`` and call
``ApprovalService.answer``. The ops chat has no way to answer.
"""

from decisionops.agent.approvals._bulk import BulkItem, BulkOutcome, not_for_bulk
from decisionops.agent.approvals._edits import check_edit, locked_arguments
from decisionops.agent.approvals._identity import (
    SEES_ALL,
    Approver,
    Channel,
    alias_clash,
    policy_identity,
    visible_functions,
)
from decisionops.agent.approvals._inbox import RESUME_HELP, answer_from_human, human_interrupt
from decisionops.agent.approvals._resolution import (
    Resolution,
    end_version,
    grant_hashes,
    resolve,
)
from decisionops.agent.approvals._service import (
    AnswerResult,
    ApprovalService,
    EditPreview,
    Routing,
    approval_request,
    change_text,
    parse_answer,
    shown_value,
)
from decisionops.agent.approvals._trail import argument_trail

__all__ = [
    "RESUME_HELP",
    "SEES_ALL",
    "AnswerResult",
    "ApprovalService",
    "Approver",
    "BulkItem",
    "BulkOutcome",
    "Channel",
    "EditPreview",
    "Resolution",
    "Routing",
    "alias_clash",
    "answer_from_human",
    "approval_request",
    "argument_trail",
    "change_text",
    "check_edit",
    "end_version",
    "grant_hashes",
    "human_interrupt",
    "locked_arguments",
    "not_for_bulk",
    "parse_answer",
    "policy_identity",
    "resolve",
    "shown_value",
    "visible_functions",
]

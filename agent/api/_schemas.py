"""Request and response bodies of the HTTP API: one input model per route, so fields
can be added later. Domain types (``Prediction``, ``Outcome``, ``FieldMapping``) are
reused as they are; identity never appears in a body (it comes from the credential)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.models import Name, RejectReason, ReviseFeedback
from decisionops.agent.sources import FieldMapping, IngestSummary

__all__ = [
    "AnswerOut",
    "ApproveIn",
    "AutonomyChangeIn",
    "BulkApproveIn",
    "BulkApproveOut",
    "BulkItemIn",
    "BulkResultOut",
    "ChatIn",
    "ChatOut",
    "ChatRefusal",
    "EditIn",
    "HitlDecision",
    "HitlIn",
    "IngestOut",
    "KServeIn",
    "MlflowIn",
    "PredictionBatchIn",
    "RejectIn",
    "ReviseIn",
    "ValidateIn",
    "ValidateOut",
]

PlanHash = Annotated[str, Field(max_length=64, description=(
    "The plan version hash the approver saw (from the approval: 64 hex characters; "
    "anything else is refused, 422). A different one means the plan changed since: 409."))]
Arguments = Annotated[dict[Name, dict[str, Any]], Field(max_length=50, description=(
    "step id -> the arguments to change (merged over the proposal, then validated)."))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class AutonomyChangeIn(_In):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000, populate_by_name=True)
    class_key: str = Field(alias="class", min_length=1, max_length=300,
                           description="The step class, as GET /v1/autonomy lists it.")
    reason: str = Field("", max_length=500)


class PredictionBatchIn(_In):
    predictions: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    """Prediction records (native field names, or foreign ones with ``mapping``)."""
    mapping: FieldMapping | None = None


Ident = Annotated[str, Field(min_length=1, max_length=200)]


class _ServingIn(_In):
    """What MLflow and KServe bodies share: the join of a response to what it scored
    (``agent.sources.iter_scored``), the same fields on both routes."""

    inputs: list[dict[str, Any]] | dict[str, Any] | None = Field(None, max_length=10_000)
    """The scored input, joined by row order: rows (column → value), or the request
    body (MLflow ``dataframe_split``…, KServe V1 ``instances``, V2 ``inputs``)."""
    entity_ids: list[Annotated[str, Field(max_length=200)]] | None = Field(None,
                                                                           max_length=10_000)
    """The entity of each response row, in order (instead of an inputs column)."""
    entity_column: Ident | None = None
    """The inputs column of entity ids; ``@index``: the request index or row position."""
    value_column: Ident | None = None
    """The inputs column holding the value at stake (same as ``mapping.value_at_stake``)."""
    positive_class: int | Ident | None = None
    """For ``[n, k]`` probabilities: the positive class by index or name (default: a
    class named 1/true/yes, else the last)."""
    mapping: FieldMapping = FieldMapping()
    observed_at: datetime | None = None


class MlflowIn(_ServingIn):
    response: dict[str, Any] | list[Any]
    """The MLflow ``/invocations`` response body."""
    request: dict[str, Any] | None = None
    """The request body that produced it; with ``entity_column``, it may carry the ids."""
    positive_index: Annotated[int, Field(ge=0, le=1000)] = 1
    score_key: Ident | None = None


class KServeIn(_ServingIn):
    response: dict[str, Any]
    """A KServe V1 ``predictions`` or V2 / Open Inference Protocol ``infer`` response."""
    request: dict[str, Any] | None = None
    entity_input: Ident = "entity_id"
    """The V2 request's BYTES input of entity ids (``entity_column`` wins when given)."""
    output_name: Ident | None = None
    positive_index: Annotated[int, Field(ge=0, le=1000)] = 1


class IngestOut(IngestSummary):
    """What an ingest did: the counts of ``decisionops ingest --json`` under the same names
    (``IngestSummary``; a body with a bad row is refused whole, so ``rejected`` is 0), and
    the ids. ``new``, ``duplicates`` and ``unknown_kinds`` are the old names, kept for
    existing clients until the next major version."""

    ingested_ids: list[str] = Field(default_factory=list,
                                    description="The ids this request stored.")
    already_stored_ids: list[str] = Field(default_factory=list, description=(
        "The ids the store held already (a re-delivery), left as they were."))
    new: list[str] = Field(default_factory=list, deprecated="use ingested_ids",
                           description="Deprecated alias of ingested_ids.")
    duplicates: list[str] = Field(default_factory=list, deprecated="use already_stored_ids",
                                  description="Deprecated alias of already_stored_ids.")
    unknown_kinds: list[str] = Field(default_factory=list,
                                     deprecated="use kinds_without_playbook",
                                     description="Deprecated alias of kinds_without_playbook.")

    @classmethod
    def of(cls, summary: IngestSummary, *, ingested_ids: list[str],
           already_stored_ids: list[str]) -> IngestOut:
        """The response, its deprecated aliases filled from the same values."""
        return cls(**dict(summary), ingested_ids=ingested_ids,
                   already_stored_ids=already_stored_ids, new=ingested_ids,
                   duplicates=already_stored_ids,
                   unknown_kinds=summary.kinds_without_playbook)


PreviewHash = Annotated[str | None, Field(None, max_length=64, description=(
    "The hash of the previews the approver saw (the approval's preview_hash, 64 hex "
    "characters). A different "
    "one means what each step would change was read again since; the answer is refused "
    "(409). Leave it out to bind to the stored previews."))]


ProposalHash = Annotated[str | None, Field(None, max_length=64, description=(
    "Under four-eyes, the edit proposal the approver saw (the approval's proposal.hash, 64 "
    "hex characters): "
    "an approve approves it. Required while a proposal stands; a different one means it "
    "was replaced since, and the answer is refused (409)."))]


class ApproveIn(_In):
    plan_hash: PlanHash
    preview_hash: PreviewHash = None
    proposal_hash: ProposalHash = None
    comment: Annotated[str, Field(max_length=2000)] = ""


class BulkItemIn(_In):
    approval_id: Annotated[str, Field(min_length=1, max_length=100)]
    plan_hash: PlanHash


class BulkApproveIn(_In):
    approvals: list[BulkItemIn] = Field(min_length=1, max_length=100)
    """The requests to approve, each with the plan hash the approver saw; each is answered
    on its own, up to its function's ``bulk_max_risk``."""
    comment: Annotated[str, Field(max_length=2000)] = ""


class BulkResultOut(BaseModel):
    approval_id: str
    status: Literal["approved", "edited", "proposed", "refused"]
    reason: str | None = None
    """The refusal code (``not_for_bulk``, ``stale_plan``, ``replay``…)."""
    message: str | None = None
    decision_id: str | None = None


class BulkApproveOut(BaseModel):
    results: list[BulkResultOut]
    """One per distinct request, in the order sent."""


class EditIn(_In):
    plan_hash: PlanHash
    preview_hash: PreviewHash = None
    arguments: Arguments
    comment: Annotated[str, Field(max_length=2000)] = ""


class RejectIn(_In):
    plan_hash: PlanHash
    reason: RejectReason


class ReviseIn(_In):
    plan_hash: PlanHash
    feedback: ReviseFeedback


class ValidateIn(_In):
    arguments: Arguments


class ArgumentChange(BaseModel):
    step_id: str
    argument: str
    before: Any = None
    after: Any = None


class ValidateOut(BaseModel):
    arguments: dict[str, dict[str, Any]]
    """The complete argument sets that would be approved, normalized."""
    changes: list[ArgumentChange]
    locked: dict[str, list[str]] = {}
    """Step id → arguments an edit may not change (what the step acts on)."""


class AnswerOut(BaseModel):
    approval_id: str
    status: Literal["approved", "edited", "rejected", "revise", "proposed"]
    """``proposed``: a four-eyes edit, waiting for a second approver of the function."""
    decision_id: str
    decision_status: str
    pending_approvals: list[str] = []
    """The decision's requests still waiting for an answer."""
    applied: bool
    """Always False: the answer is recorded; a worker applies it (at once when one runs
    in the service, else on its next pass)."""
    held: str | None = None
    """Why a worker will not apply it yet (an operator hold), or None."""


class _HitlApprove(_In):
    type: Literal["approve"]


class _HitlAction(_In):
    name: Annotated[str, Field(max_length=80)]
    args: dict[str, Any]


class _HitlEdit(_In):
    type: Literal["edit"]
    edited_action: _HitlAction


class _HitlReject(_In):
    type: Literal["reject"]
    message: Annotated[str, Field(max_length=2000)] | None = None


HitlDecision = Annotated[_HitlApprove | _HitlEdit | _HitlReject, Field(discriminator="type")]


class HitlIn(_In):
    """LangChain human-in-the-loop response: one decision per action request, in order."""

    decisions: list[HitlDecision] = Field(min_length=1, max_length=50)


class ChatIn(_In):
    message: Annotated[str, Field(min_length=1, max_length=4000)]


class ChatRefusal(BaseModel):
    tool: str
    """What was asked for (a tool of the chat, or ``approve``: chat cannot approve)."""
    error: str
    """Why it was refused; nothing of it happened."""


class ChatOut(BaseModel):
    reply: str
    conversation_id: str
    mode: Literal["commands", "llm"]
    refused: list[ChatRefusal] = []
    """What the message (or the model, for it) asked for and was refused: the reply's
    text may say otherwise, this does not."""

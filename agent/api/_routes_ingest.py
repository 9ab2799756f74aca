"""Routes that bring predictions in: native JSON, MLflow and KServe V1/V2 bodies, and
signed webhooks (outcomes: ``_routes_outcomes``).

The MLflow and KServe routes take the same join fields: a response of scores with the
``inputs`` it scored (rows or the request body) and an ``entity_column``, or the
``entity_ids`` in order, or a request that carries the ids itself; one join for both
(``agent.sources.iter_scored``), the same as ``decisionops ingest --inputs``.

A body with any bad row is refused whole (422 listing the rows and fields) and
nothing is stored; re-delivered prediction ids are acknowledged as already stored. The
response counts rows as ``decisionops ingest --json`` does, under the same names
(``agent.sources.IngestSummary``), and adds the ids. The ledger records the caller as
the actor of every ingest.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from decisionops.agent.api._auth import Principal
from decisionops.agent.api._limits import StrictJSONRoute, strict_loads
from decisionops.agent.api._schemas import IngestOut, KServeIn, MlflowIn, PredictionBatchIn
from decisionops.agent.api._state import ServiceState, get_state, requires
from decisionops.agent.api._webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    delivery_id_ok,
    verify_signature,
)
from decisionops.agent.errors import (
    InvalidInputError,
    error_body,
    pydantic_message,
)
from decisionops.agent.runtime import Runtime
from decisionops.agent.sources import (
    FieldMapping,
    IngestTally,
    PreparedChunk,
    SourceBatch,
    SourceLimits,
    parse_scored,
    read_records,
)

__all__ = ["ingest_router"]

Format = Literal["native", "mlflow", "kserve"]


def _batch(fmt: str, body: Any, limits: SourceLimits) -> SourceBatch:
    if fmt == "native":
        return read_records(body.predictions, body.mapping, limits=limits, location="body")
    mapping = body.mapping
    if body.value_column is not None:
        try:
            mapping = FieldMapping.model_validate({**mapping.model_dump(exclude_unset=True),
                                                   "value_at_stake": body.value_column})
        except ValidationError as exc:
            raise InvalidInputError(pydantic_message(exc.errors(include_url=False)[0]),
                                    field="value_column") from None
    positive = body.positive_class
    if positive is None and "positive_index" in body.model_fields_set:
        positive = body.positive_index
    if fmt == "mlflow" and positive is None and body.score_key is not None:
        positive = body.score_key
    entity_column = body.entity_column or getattr(body, "entity_input", "entity_id")
    try:
        return parse_scored(body.response,
                            body.inputs if body.inputs is not None else body.request,
                            mapping=mapping, entity_column=entity_column,
                            entity_ids=body.entity_ids, positive=positive,
                            output_name=getattr(body, "output_name", None),
                            observed_at=body.observed_at, limits=limits)
    except InvalidInputError as exc:
        if exc.field != "value_at_stake" or body.value_column is None:
            raise
        # the body's field that names it (trial 25: named value_at_stake; the CLI names
        # --value-column)
        raise InvalidInputError(exc.message.removeprefix(f"{exc.location}: ")
                                .removeprefix("value_at_stake: "), field="value_column",
                                location=exc.location) from None


def _store(rt: Runtime, batch: SourceBatch, *, source: str, actor: str) -> IngestOut:
    if batch.errors:
        first = batch.errors[0]
        raise InvalidInputError(
            f"{len(batch.errors)} problem(s) in {batch.rows_read} row(s); nothing was stored. "
            f"First: {first}", field=f"predictions.{first.row - 1}"
            + (f".{first.field}" if first.field else ""),
            problems=[{"row": e.row, "field": e.field, "message": e.message}
                      for e in batch.errors[:50]])
    if not batch.predictions:
        raise InvalidInputError("no predictions in the body", field="predictions")
    # The rows, not the predictions: they say what the intake filled in (the clock's time
    # for a body without one), which a re-delivery does not count as other content.
    result = rt.ingest(PreparedChunk.of(batch, {}).rows, source=source, actor=actor)
    tally = IngestTally()  # the counts as the CLI adds them up, for a one-batch input
    tally.add(batch, result)
    return IngestOut.of(tally.summary(), ingested_ids=result.new,
                        already_stored_ids=result.duplicates)


_MAX_ROWS = 10_000
"""Rows one request may carry: a request is stored as one batch, in one transaction."""


def _limits(state: ServiceState) -> SourceLimits:
    return SourceLimits(
        max_bytes=state.settings.max_ingest_bytes, max_rows=_MAX_ROWS,
        rows_advice=f"split it: the API takes at most {_MAX_ROWS:,} rows a request "
                    "(`decisionops ingest` streams files of any size)",
        bytes_advice="split it, or raise the service's DECISIONOPS_MAX_INGEST_BYTES")


def ingest_router(principal: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["ingest"], route_class=StrictJSONRoute)
    ingester = requires(principal, "ingest")
    adapters: dict[str, TypeAdapter[Any]] = {
        "native": TypeAdapter(PredictionBatchIn), "mlflow": TypeAdapter(MlflowIn),
        "kserve": TypeAdapter(KServeIn)}

    @router.post("/predictions", response_model=IngestOut, status_code=200,
                 summary="Ingest predictions (native JSON)")
    def ingest_native(body: PredictionBatchIn, who: Principal = Depends(ingester),
                      state: ServiceState = Depends(get_state)) -> IngestOut:
        """Store prediction records: ``{"predictions": [...], "mapping": {...}}``.
        Re-delivered ids are listed as already stored; a bad row refuses the whole body."""
        batch = _batch("native", body, _limits(state))
        return _store(state.runtime, batch, source=f"api:{who.name}", actor=who.name)

    @router.post("/predictions/mlflow", response_model=IngestOut,
                 summary="Ingest an MLflow scoring response joined to what it scored")
    def ingest_mlflow(body: MlflowIn, who: Principal = Depends(ingester),
                      state: ServiceState = Depends(get_state)) -> IngestOut:
        batch = _batch("mlflow", body, _limits(state))
        return _store(state.runtime, batch, source=f"mlflow:{who.name}", actor=who.name)

    @router.post("/predictions/kserve", response_model=IngestOut,
                 summary="Ingest a KServe V1 or V2 (Open Inference Protocol) response")
    def ingest_kserve(body: KServeIn, who: Principal = Depends(ingester),
                      state: ServiceState = Depends(get_state)) -> IngestOut:
        batch = _batch("kserve", body, _limits(state))
        return _store(state.runtime, batch, source=f"kserve:{who.name}", actor=who.name)

    @router.post("/webhooks/predictions", response_model=IngestOut,
                 summary="Signed webhook delivery of predictions",
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/json": {"schema": {"type": "object"}}}}})
    async def webhook(request: Request, format: Format = Query("native"),
                      state: ServiceState = Depends(get_state)) -> Any:
        """Body as for ``/v1/predictions`` (or ``/mlflow``, ``/kserve`` with ``format``),
        signed with ``DecisionOps-Signature`` and named by ``DecisionOps-Delivery``.
        A replayed delivery id gets the first response; the same id with another body 409."""
        raw = await request.body()
        verify_signature(request.headers.get(SIGNATURE_HEADER), raw,
                         state.settings.webhook_secrets, now=time.time(),
                         tolerance=state.settings.webhook_tolerance_seconds)
        delivery_id = request.headers.get(DELIVERY_HEADER)
        if not delivery_id_ok(delivery_id):
            raise InvalidInputError("must be 1-200 letters, digits, or . _ : -",
                                    field=DELIVERY_HEADER, location="header")
        assert delivery_id is not None
        rt = state.runtime
        digest = hashlib.sha256(raw).hexdigest()
        seen = rt.store.webhooks.claim(delivery_id, body_sha256=digest)
        if seen is not None:
            if seen["body_sha256"] != digest:
                return JSONResponse(error_body(409, f"delivery {delivery_id} was received with "
                                               "another body", field=DELIVERY_HEADER), 409)
            if seen["status_code"] is None:
                return JSONResponse(error_body(409, f"delivery {delivery_id} is being "
                                               "processed"), 409, headers={"Retry-After": "1"})
            return JSONResponse(seen["response"], seen["status_code"],
                                headers={"DecisionOps-Replayed": "true"})
        status, payload, finished = 200, {}, False
        try:
            body = adapters[format].validate_python(strict_loads(raw))
            batch = _batch(format, body, _limits(state))
            out = _store(rt, batch, source=f"webhook:{delivery_id}", actor="webhook")
            payload = out.model_dump()
        except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError
            status = 422
            if isinstance(exc, ValidationError):
                err = exc.errors(include_url=False)[0]
                field = ".".join(str(p) for p in err["loc"]) or None
                message = pydantic_message(err)
                payload = error_body(422, f"{field}: {message}" if field else message,
                                     field=field)
            else:
                payload = error_body(422, f"body is not valid JSON: {exc}")
        except InvalidInputError as exc:
            status = 422
            payload = error_body(422, exc.message, field=exc.field)
        finally:
            if status == 200 and not payload:
                # Failed unexpectedly: forget the claim so the sender's retry is processed.
                rt.store.webhooks.forget(delivery_id)
            else:
                finished = True
        if finished:
            rt.store.webhooks.finish(delivery_id, status_code=status, response=payload)
        return JSONResponse(payload, status)

    return router

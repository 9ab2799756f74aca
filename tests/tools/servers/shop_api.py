"""A real HTTP service with an OpenAPI 3 document, for the OpenAPI tool tests: it records
every request it receives (method, path, headers, body) in ``app.state.requests``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field


class CreditIn(BaseModel):
    amount: float = Field(gt=0)
    currency: str


def build_app() -> FastAPI:
    app = FastAPI(title="shop")
    app.state.requests = []
    app.state.fail_next = 0
    app.state.echo = False
    app.state.balances = {}

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        body = await request.body()
        app.state.requests.append({"method": request.method, "path": request.url.path,
                                   "query": dict(request.query_params),
                                   "headers": dict(request.headers), "body": body.decode()})
        if app.state.fail_next and request.url.path != "/openapi.json":
            app.state.fail_next -= 1
            said = request.headers.get("authorization", "") if app.state.echo else ""
            return Response(f"busy {said}", status_code=503)
        return await call_next(request)

    @app.post("/accounts/{account_id}/credits", operation_id="createCredit", status_code=201)
    def create_credit(account_id: str, credit: CreditIn) -> dict[str, Any]:
        """Credit an account."""
        app.state.balances[account_id] = app.state.balances.get(account_id, 0.0) + credit.amount
        return {"credit_id": f"CR-{account_id}", "amount": credit.amount}

    @app.get("/accounts/{account_id}", operation_id="getAccount")
    def get_account(account_id: str, expand: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"account_id": account_id, "expand": expand}
        if account_id in app.state.balances:
            out["credits"] = app.state.balances[account_id]
        return out

    @app.delete("/accounts/{account_id}", operation_id="deleteAccount")
    def delete_account(account_id: str) -> dict[str, Any]:
        return {"deleted": account_id}

    @app.post("/bounce", operation_id="bounce")
    def bounce() -> RedirectResponse:
        return RedirectResponse("http://169.254.169.254/latest/meta-data", status_code=307)

    return app

"""The DecisionOps HTTP service: a versioned JSON API (``/v1``, OpenAPI at
``/openapi.json``), the approvers' web inbox, and the ops chat.

::

    GET  /healthz, /readyz                     liveness; readiness (the store answers)
    GET  /v1/me                                who the credential belongs to
    POST /v1/predictions                       native JSON records (+ field mapping)
    POST /v1/predictions/mlflow | /kserve      model-server response (+ request) bodies
    POST /v1/webhooks/predictions              signed deliveries (HMAC, replay-deduped)
    POST /v1/outcomes                          what happened after a decision
    GET  /v1/outcomes, /v1/report              outcomes recorded; the value report's figures
    GET  /v1/decisions[/{id}]                  decisions; one with plan, approvals,
                                               executions, ledger entries
    GET  /v1/approvals[/{id}]                  pending for the caller, most urgent first;
                                               one with its evidence
    POST /v1/approvals/{id}/approve|edit|reject|revise   answer (bound to plan_hash)
    POST /v1/approvals/{id}/validate           check an edit without recording it
    POST /v1/approvals/bulk-approve            approve low-risk requests, each on its own
    GET|POST /v1/approvals/{id}/hitl           LangChain human-in-the-loop shape
    GET|POST /v1/chat                          the ops chat (never approves)
    GET  /v1/holds                             active operator holds
    /login /inbox /inbox/requests/{id} /decisions/{id} /chat   the web pages

Auth model (``_auth``): API tokens stored hashed, mapped to users with one role
(approver of named functions, operator, ingest, admin); the web uses a signed,
``HttpOnly``, ``SameSite=Strict`` session cookie plus CSRF tokens. Approval refusals are
recorded in the ledger (``_approvals``). Start it with ``decisionops serve``.
"""

from decisionops.agent.api._app import create_app
from decisionops.agent.api._auth import ROLES
from decisionops.agent.api._settings import ServiceSettings
from decisionops.agent.api._users import add_user, issue_token, set_functions

__all__ = ["ROLES", "ServiceSettings", "add_user", "create_app", "issue_token", "set_functions"]

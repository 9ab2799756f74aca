"""One exception tree for DecisionOps.

::

    DecisionOpsError
    ├── UsageError                 misuse, bad input or configuration; the CLI exits 2
    │   ├── ConfigError            settings, playbooks or function policies that cannot load
    │   ├── InvalidInputError      a value a user or a model gave us is wrong (names the field)
    │   │   ├── ToolArgumentsError arguments do not fit a tool's schema or a function's limits
    │   │   │   └── LockedArgumentError  an edit changes what a step acts on (its target)
    │   │   └── PlanRejected       the guard refused a plan
    │   ├── NotFoundError          unknown decision, approval, tool, prediction
    │   ├── ConflictError          the state moved on: answered approval, finished decision,
    │   │   │                      stale plan version, unknown interrupt, pending decision
    │   │   ├── LeaseHeld          another worker holds the decision's lease right now
    │   │   ├── NothingToResume    no answered approval waits to be applied
    │   │   └── LoopAlreadyRunning another process runs the loop on this SQLite folder
    │   └── PermissionDenied       an approver answering for a function they do not approve
    └── RuntimeFailure             something failed while doing the work; ``retryable`` says
        ├── ToolCallError          whether the same call may succeed later
        ├── LeaseLost              another worker owns the decision now (fencing)
        └── LedgerCorrupt          the hash chain does not verify

Control flow inside LangGraph (``GraphInterrupt``) is LangGraph's own and never wrapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ERROR_CODES",
    "ConfigError",
    "ConflictError",
    "DecisionOpsError",
    "InvalidInputError",
    "LeaseHeld",
    "LeaseLost",
    "LedgerCorrupt",
    "LockedArgumentError",
    "LoopAlreadyRunning",
    "NotFoundError",
    "NothingToResume",
    "PermissionDenied",
    "PlanRejected",
    "RuntimeFailure",
    "ShuttingDown",
    "ToolArgumentsError",
    "ToolCallError",
    "UsageError",
    "cannot_write",
    "error_body",
    "error_fields",
    "pydantic_message",
    "status_for",
]


class DecisionOpsError(Exception):
    """Base of every error DecisionOps raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class UsageError(DecisionOpsError):
    """The caller asked for something that cannot be done as asked; nothing was changed."""

    exit_code = 2


class ConfigError(UsageError):
    """Settings, playbooks or function policies are invalid."""


class InvalidInputError(UsageError):
    """A value is wrong. ``field`` names it (dotted path), ``location`` says where it came from."""

    def __init__(self, message: str, *, field: str | None = None, location: str | None = None,
                 **details: Any) -> None:
        prefix = ""
        if location:
            prefix += f"{location}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message, field=field, location=location, **details)
        self.field = field
        self.location = location

    def relocate(self, location: str) -> None:
        """Say this refusal of ``location``, where the value really came from (it was read
        from a copy: standard input spooled to a file)."""
        if self.location:
            self.message = location + self.message.removeprefix(self.location)
        self.args = (self.message,)
        self.location = self.details["location"] = location


class ToolArgumentsError(InvalidInputError):
    """Arguments do not validate against a tool's schema or a function's limits."""


class LockedArgumentError(ToolArgumentsError):
    """An edit changes an argument that names what the step acts on (an account, an asset,
    a currency, a recipient…). An approval binds its steps' targets: to act on something
    else, reject or ask for a revision."""


class PlanRejected(InvalidInputError):
    """The guard refused a plan; ``problems`` lists every finding."""

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message, problems=problems)
        self.problems = problems


class NotFoundError(UsageError):
    """The named object does not exist."""


class ConflictError(UsageError):
    """The object is not in a state that allows the request (compare-and-set lost)."""


class LeaseHeld(ConflictError):
    """Another worker is acting on this decision; try again after its lease."""


class NothingToResume(ConflictError):
    """No recorded answer waits to be applied (another worker may have applied it)."""


class LoopAlreadyRunning(ConflictError):
    """Another process (``run`` or ``serve``) runs the loop on this embedded data folder;
    SQLite allows one writer, so there is one loop per folder (see ``agent.looplock``)."""


class PermissionDenied(UsageError):
    """The actor is not authorized for this action."""


class RuntimeFailure(DecisionOpsError):
    """Work failed. ``retryable`` tells whether repeating the same request may succeed."""

    def __init__(self, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message, **details)
        self.retryable = retryable


class ShuttingDown(RuntimeFailure):
    """The worker is stopping: no new call to a model starts. The leg ends here, without
    a fallback plan; the next worker carries the decision on as it would have."""


class ToolCallError(RuntimeFailure):
    """A tool call failed at the system it acts on."""


class LeaseLost(RuntimeFailure):
    """This worker no longer holds the lease on a decision; it must stop acting on it."""


class LedgerCorrupt(RuntimeFailure):
    """The ledger's hash chain does not verify at ``seq``."""

    def __init__(self, message: str, *, seq: int | None) -> None:
        super().__init__(message, seq=seq)
        self.seq = seq


# ---------------------------------------------------------------------- how a refusal is said

ERROR_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large",
               415: "unsupported", 422: "invalid_input", 429: "too_many_requests",
               503: "unavailable"}
"""The ``code`` of an error body, by the HTTP status the error is answered with."""


def status_for(exc: DecisionOpsError) -> int:
    """The HTTP status of ``exc`` (and so its ``code``, on every channel)."""
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InvalidInputError):
        return 422
    if isinstance(exc, RuntimeFailure):
        return 503 if exc.retryable else 500
    return 400


def error_body(status: int, message: str, *, field: str | None = None,
               **extra: Any) -> dict[str, Any]:
    """``{"error": {"code", "message", "field"?, …}}``: a refusal as the HTTP API, the
    command line's ``--json`` and the drop folder's ``.errors.json`` all say it (extras
    that are None are left out)."""
    body: dict[str, Any] = {"code": ERROR_CODES.get(status, "error"), "message": message}
    if field:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if v is not None})
    return {"error": body}


def error_fields(exc: DecisionOpsError) -> dict[str, Any]:
    """What ``exc`` says beyond its message, for ``error_body``: the field, where the
    value came from, the line or row of a file, the reason and the problems found."""
    details = exc.details
    out: dict[str, Any] = {}
    for key in ("field", "location", "reason"):
        if isinstance(details.get(key), str):
            out[key] = details[key]
    for key in ("line", "row"):
        if isinstance(details.get(key), int):
            out[key] = details[key]
    if isinstance(details.get("problems"), list):
        out["problems"] = details["problems"]
    return out


def pydantic_message(error: Mapping[str, Any]) -> str:
    """A pydantic validation error's message as a user should read it: without the
    "Value error, " pydantic puts before a validator's own ``ValueError`` text, and
    "must not be empty" for a text that is empty or only blanks."""
    if error.get("type") == "string_too_short" and (error.get("ctx") or {}).get(
            "min_length") == 1:
        return "must not be empty"
    return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


_EROFS = 30
"""A read-only file system. (Not EACCES: a file a user may not read says so itself.)"""
_READ_ONLY_TEXT = ("readonly database", "read-only transaction", "read only transaction",
                   "read-only file system")


def cannot_write(exc: BaseException) -> str | None:
    """What to say when ``exc`` (or what caused it) is a write refused because the data
    folder or the database is read-only (a read-only volume, a store opened read-only,
    a replica): one sentence for the CLI and the HTTP API alike
    (503); None for any other error (trial 32: a traceback, or "internal error")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == _EROFS:
            where = current.filename or "the data folder"
            return (f"cannot write {where}: the file system is read-only. DecisionOps keeps "
                    "its store, ledger and loop lock in its data folder (DECISIONOPS_HOME): "
                    "make it writable, or point DECISIONOPS_HOME at a folder that is")
        text = str(getattr(current, "orig", None) or current).lower()
        if any(marker in text for marker in _READ_ONLY_TEXT):
            return ("cannot write the store: the database is read-only (a read-only volume "
                    "or file, or a database opened read-only); the write was not made. Make "
                    "it writable, or point DECISIONOPS_HOME / DECISIONOPS_DATABASE_URL at one "
                    "that is")
        current = current.__cause__ or current.__context__
    return None

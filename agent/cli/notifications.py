"""``decisionops notifications``: the approver messages on Slack and e-mail, and sending
again the ones that failed.

A message is queued in the transaction of its event (a request created, reminded,
escalated or expired) and sent by the loop's sender with backoff; after
``notify_max_attempts`` it is ``failed`` and stays so until someone sends it again
(once the webhook or the mail server is fixed): ``notifications resend --failed``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from decisionops.agent.cli._common import (
    Column,
    console,
    exit_for,
    fail,
    limited,
    print_fitted,
    print_json,
    runtime,
    say_more,
)
from decisionops.agent.errors import ConflictError, NotFoundError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Approver notifications: list, resend the failed.\n\n"
                  "Example: decisionops notifications list --status failed")

Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
STATUSES = ("pending", "sent", "failed", "skipped")


@app.command("list")
def list_(status: Annotated[str | None, typer.Option(
              help="Only messages of this status: pending, sent, failed or skipped.")] = None,
          decision: Annotated[str | None, typer.Option(help="Only this decision's messages.")] = None,
          limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
          as_json: Json = False) -> None:
    """List approver messages, newest first: channel, recipient, status, attempts, the
    last error (no secret: the webhook URL and the SMTP password are never in it).

    Example: decisionops notifications list --status failed --json
    """
    if status is not None and status not in STATUSES:
        raise fail(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    with runtime() as rt:
        rows, more = limited(rt.store.notifications.list(status=status, decision_id=decision,
                                                         limit=limit + 1), limit)
    if as_json:
        print_json([{"decision_id": r.decision_id, **r.to_dict()} for r in rows])
        if more:
            say_more(limit, 10_000, as_json=True)
        return
    # Every value whole but the last error, cut with … (trial 19: at 80 columns every
    # column was folded to a few letters); the least needed columns give way first.
    print_fitted("notifications", [
        Column("id"), Column("created"), Column("event"), Column("channel"), Column("to"),
        Column("status"), Column("tries", justify="right"),
        Column("last error", overflow="ellipsis")],
        [[r.id, f"{r.created_at:%Y-%m-%d %H:%M}", r.event, r.channel, r.recipient,
          r.status, r.attempts, r.last_error or ""] for r in rows],
        drop=("created", "event", "tries"), empty="no notifications")
    if more:
        say_more(limit, 10_000, as_json=False)


@app.command("resend")
def resend(ids: Annotated[list[str] | None, typer.Argument(
               help="Failed messages to send again (ids from notifications list).")] = None,
           failed: Annotated[bool, typer.Option("--failed", help="Every failed message.")] = False,
           as_json: Json = False) -> None:
    """Queue failed messages again: the loop's sender sends them at its next pass, with
    a fresh set of attempts. A message that was sent is never sent again, and one still
    in the queue is left as it is.

    Example: decisionops notifications resend --failed
    """
    if bool(ids) == failed:
        raise fail("give message ids or --failed (one of the two)")
    with runtime() as rt:
        repo = rt.store.notifications
        if ids:
            for message_id in ids:
                row = repo.get(message_id)
                if row is None:
                    raise exit_for(NotFoundError(f"no notification {message_id!r}",
                                                 field="ids"))
                if row.status != "failed":
                    raise exit_for(ConflictError(f"{message_id} is {row.status}, not failed; "
                                                 "only a failed message is sent again",
                                                 field="ids"))
        requeued = repo.requeue_failed(ids or None)
    if as_json:
        print_json({"requeued": requeued})
        return
    console.print(f"queued again: {len(requeued)} message{'s' if len(requeued) != 1 else ''}"
                  + (" (the loop sends them at its next pass)" if requeued else ""))

"""Delivering the notification outbox: a Slack-compatible incoming webhook (HTTP POST of
the stored JSON) and SMTP (``smtplib``), with retries and exponential backoff.

``Deliverer.deliver_due`` claims due messages (a lease per message, so two workers never
send the same attempt), sends each, and marks it ``sent``, ``pending`` for a later attempt
(``notify_backoff_seconds`` * 2 ** (attempt - 1), at most an hour) or ``failed`` after
``notify_max_attempts``. Delivery is at least once: a crash after a send and before its
mark sends that message again once the lease lapses; receivers de-duplicate on the stable
message id (Slack ``client_msg_id``, the e-mail ``Message-ID``).

``SenderThread`` runs it off the worker loop, a thread per channel: the loop's
housekeeping only ``kick``s it, so no tick waits on a webhook or a mail server, and no
e-mail waits behind a slow Slack post (or the other way round).

Errors stored and logged name the channel and the failure (HTTP status, SMTP reply,
exception type), never the webhook URL or the SMTP credentials.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from sqlalchemy.exc import SQLAlchemyError

from decisionops.agent.models import utcnow
from decisionops.agent.settings import Settings
from decisionops.agent.store._outbox import NotificationRepo, NotificationRow
from decisionops.agent.telemetry import Metrics

__all__ = ["Deliverer", "DeliveryError", "SenderThread"]

_log = logging.getLogger(__name__)
_LEASE = timedelta(minutes=2)
_TIMEOUT = 10.0


class DeliveryError(Exception):
    """One attempt failed; the message says how, without secrets."""


class _Redact(logging.Filter):
    """httpx logs each request's URL at INFO; a webhook URL is a secret (its path is
    the credential), so the records of ours say ``<slack webhook>`` instead."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(self._secret in str(a) for a in record.args):
            record.args = tuple("<slack webhook>" if self._secret in str(a) else a
                                for a in record.args)
        return True


class Deliverer:
    def __init__(self, repo: NotificationRepo, settings: Settings, metrics: Metrics) -> None:
        self._repo = repo
        self._settings = settings
        self._metrics = metrics
        self._redact: _Redact | None = None
        if settings.slack_webhook_url is not None:
            self._redact = _Redact(settings.slack_webhook_url.get_secret_value())
            logging.getLogger("httpx").addFilter(self._redact)

    def close(self) -> None:
        if self._redact is not None:
            logging.getLogger("httpx").removeFilter(self._redact)

    def deliver_due(self, limit: int = 50, *, channel: str | None = None) -> dict[str, int]:
        """Send up to ``limit`` due messages (of ``channel``, or of any)."""
        counts = {"notifications_sent": 0, "notifications_retried": 0,
                  "notifications_failed": 0}
        for _ in range(limit):
            # One claim per message, right before it is sent: a batch claimed up front
            # lapses behind slow sends and a second worker would send it again.
            claimed = self._repo.claim_due(limit=1, lease=_LEASE, channel=channel)
            if not claimed:
                break
            (message,) = claimed
            attempts = message.attempts + 1
            try:
                self._send(message)
            except DeliveryError as exc:
                error = str(exc)
                if attempts >= self._settings.notify_max_attempts:
                    self._repo.mark_failed(message.id, attempts=attempts, error=error)
                    self._metrics.notifications.labels(message.channel, "failed").inc()
                    counts["notifications_failed"] += 1
                    _log.warning("notification %s failed for good: %s", message.id, error)
                else:
                    delay = min(3600.0, self._settings.notify_backoff_seconds
                                * 2 ** (attempts - 1))
                    self._repo.mark_retry(message.id, attempts=attempts, error=error,
                                          at=utcnow() + timedelta(seconds=delay))
                    self._metrics.notifications.labels(message.channel, "retried").inc()
                    counts["notifications_retried"] += 1
                    _log.warning("notification %s to %s not sent (attempt %d of %d, again in "
                                 "%.0f s): %s", message.id, message.channel, attempts,
                                 self._settings.notify_max_attempts, delay, error)
                continue
            self._repo.mark_sent(message.id, attempts=attempts)
            self._metrics.notifications.labels(message.channel, "sent").inc()
            counts["notifications_sent"] += 1
        return counts

    def _send(self, message: NotificationRow) -> None:
        try:
            if message.channel == "slack":
                self._slack(message.payload)
            elif message.channel == "email":
                self._email(message)
            else:
                raise DeliveryError(f"unknown channel {message.channel!r}")
        except DeliveryError:
            raise
        except Exception as exc:  # e.g. a URL httpx cannot encode: retry, never kill the sender
            raise DeliveryError(f"{message.channel}: {type(exc).__name__}") from None

    def _slack(self, payload: dict[str, Any]) -> None:
        secret = self._settings.slack_webhook_url
        if secret is None:
            raise DeliveryError("slack: slack_webhook_url is not set")
        try:
            response = httpx.post(secret.get_secret_value(), json=payload, timeout=_TIMEOUT)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"slack: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryError(f"slack: HTTP {response.status_code}")

    def _email(self, message: NotificationRow) -> None:
        s = self._settings
        if s.smtp_url is None or not s.smtp_from:
            raise DeliveryError("email: smtp_url / smtp_from is not set")
        url = urlsplit(s.smtp_url.get_secret_value())
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = message.recipient
        mail["Subject"] = message.payload["subject"]
        mail["Message-ID"] = f"<{message.id}@decisionops>"
        mail["Date"] = format_datetime(utcnow())  # RFC 5322 requires one
        mail.set_content(message.payload["body"])
        secure = url.scheme == "smtps"
        port = url.port or (465 if secure else 25)
        try:
            client: smtplib.SMTP = (
                smtplib.SMTP_SSL(url.hostname or "", port, timeout=_TIMEOUT,
                                 context=ssl.create_default_context())
                if secure else smtplib.SMTP(url.hostname or "", port, timeout=_TIMEOUT))
            with client:
                if s.smtp_starttls and not secure:
                    client.starttls(context=ssl.create_default_context())
                if url.username:
                    client.login(unquote(url.username), unquote(url.password or ""))
                client.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"email: SMTP {exc.smtp_code}{_reply(exc.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            # The library's words (no address or credential is in them): "SMTP AUTH
            # extension not supported by server.", "[Errno 111] Connection refused".
            raise DeliveryError(f"email: {type(exc).__name__}{_reply(str(exc))}") from None


def _reply(text: str | bytes) -> str:
    """A server's reply or a library's message, on one line and cut short: ``: …``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return f": {text[:200]}" if text else ""


CHANNELS = ("slack", "email")


class SenderThread:
    """Delivers the outbox off the loop, a thread per channel, every ``interval`` seconds
    and at once when kicked. Closing finishes a round kicked before it (``run --once``
    sends what its tick queued), bounded by the channels' timeouts."""

    def __init__(self, deliverer: Deliverer, interval: float = 1.0) -> None:
        self._deliverer = deliverer
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._senders = [_ChannelSender(deliverer, channel, interval, self._stop)
                         for channel in CHANNELS]

    def kick(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            for sender in self._senders:
                sender.kick()

    def close(self) -> None:
        with self._lock:
            self._stop.set()
        for sender in self._senders:
            sender.wake.set()
        deadline = time.monotonic() + _TIMEOUT * 3
        for sender in self._senders:
            sender.join(max(0.0, deadline - time.monotonic()))


class _ChannelSender:
    """One channel's sender thread (started at the first kick)."""

    def __init__(self, deliverer: Deliverer, channel: str, interval: float,
                 stop: threading.Event) -> None:
        self._deliverer = deliverer
        self._channel = channel
        self._interval = interval
        self._stop = stop
        self.wake = threading.Event()
        self._due = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"notification sender ({self._channel})")
            self._thread.start()
        self._due.set()
        self.wake.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            self.wake.wait(self._interval)
            self.wake.clear()
            due = self._due.is_set() or not self._stop.is_set()
            self._due.clear()
            if due:
                try:
                    self._deliverer.deliver_due(channel=self._channel)
                except SQLAlchemyError:  # the store was unreachable; the next round retries
                    _log.warning("notification delivery round failed (%s)", self._channel,
                                 exc_info=True)
            if self._stop.is_set():
                return

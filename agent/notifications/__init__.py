"""Approver notifications on real channels (Slack-compatible webhook, SMTP e-mail):
composed into the outbox with the approval event that causes them (``Composer``),
delivered off the worker loop with retries (``Deliverer``, ``SenderThread``)."""

from decisionops.agent.notifications._compose import EVENTS, Composer
from decisionops.agent.notifications._deliver import Deliverer, DeliveryError, SenderThread

__all__ = ["EVENTS", "Composer", "Deliverer", "DeliveryError", "SenderThread"]

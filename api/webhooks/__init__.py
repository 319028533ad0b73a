"""Webhooks: signed deliveries of the city's events to each tenant's endpoints.

See :mod:`api.webhooks.relay` for the delivery loop, :mod:`api.webhooks.store` for the state,
:mod:`api.webhooks.signing` for the ``Dispatch-Signature`` header, :mod:`api.webhooks.sender` for
the HTTP client that POSTs them.
"""

from api.webhooks.relay import Relay, event_body
from api.webhooks.signing import HEADER, sign, verify
from api.webhooks.store import Attempt, Endpoint, MemoryWebhookStore, RedisWebhookStore, WebhookStore
from api.webhooks.urls import UnsafeUrl, check_url

__all__ = [
    "HEADER",
    "Attempt",
    "Endpoint",
    "MemoryWebhookStore",
    "RedisWebhookStore",
    "Relay",
    "UnsafeUrl",
    "WebhookStore",
    "check_url",
    "event_body",
    "sign",
    "verify",
]

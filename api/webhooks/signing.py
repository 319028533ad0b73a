"""The ``Dispatch-Signature`` header: Stripe's scheme, ``t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC is over ``"<t>.<body>"`` with the endpoint's signing secret, so a receiver checks both
that the body is ours and unchanged, and (against replays) that ``t`` is recent.

>>> header = sign("whsec_test", 1_750_000_000, b'{"id": "c-1"}')
>>> header.startswith("t=1750000000,v1=")
True
>>> verify("whsec_test", header, b'{"id": "c-1"}', now=1_750_000_100)
True
>>> verify("whsec_test", header, b'{"id": "c-2"}', now=1_750_000_100)
False
>>> verify("whsec_test", header, b'{"id": "c-1"}', now=1_750_000_400)  # older than 5 minutes
False
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "TOLERANCE_S", "sign", "verify"]

HEADER = "Dispatch-Signature"
#: A receiver refuses a signature older (or newer) than this: a replayed delivery.
TOLERANCE_S = 300


def sign(secret: str, t: int, body: bytes) -> str:
    """The header value for ``body`` sent at POSIX second ``t``."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = TOLERANCE_S) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - t) > tolerance_s:
        return False
    expected = sign(secret, t, body).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))

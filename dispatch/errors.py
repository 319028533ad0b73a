"""One error hierarchy for the whole engine.

Callers catch a group (``InvalidInput``, ``NotFound``, ``Conflict``, ``Refused``,
``StoreUnavailable``) or the
root ``DispatchError``. Every error carries a stable ``code`` (the API turns it into a
problem+json ``type``) and a human message that says what was wrong, in numbers where
there are numbers. When one is raised, nothing has been written.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "CourierOffShift",
    "DispatchError",
    "DuplicateId",
    "IllegalTransition",
    "InvalidInput",
    "InvalidLocation",
    "InvalidWindow",
    "LeaseHeld",
    "LeaseLost",
    "NotFound",
    "OutsideDeliveryArea",
    "Refused",
    "StaleWrite",
    "StoreUnavailable",
    "TooManyPinAttempts",
    "UnknownCourier",
    "UnknownMerchant",
    "UnknownOffer",
    "UnknownOrder",
    "WindowInfeasible",
    "WrongPin",
]


class DispatchError(Exception):
    """Root of every error the engine raises on purpose."""

    code = "dispatch-error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


# -- bad input: the caller sent something that can never be right ------------------------


class InvalidInput(DispatchError, ValueError):
    """A value is malformed or out of range."""

    code = "invalid-input"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class InvalidLocation(InvalidInput):
    """Latitude/longitude out of range, NaN or infinite."""

    code = "invalid-location"


class InvalidWindow(InvalidInput):
    """A delivery window that ends before it starts, is too long, or lies in the past."""

    code = "invalid-window"


# -- unknown ids ----------------------------------------------------------------------------


class NotFound(DispatchError, KeyError):
    """An id that names nothing."""

    code = "not-found"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UnknownMerchant(NotFound):
    code = "unknown-merchant"


class UnknownCourier(NotFound):
    code = "unknown-courier"


class UnknownOrder(NotFound):
    code = "unknown-order"


class UnknownOffer(NotFound):
    """An offer its courier does not hold (declined, expired, or never made)."""

    code = "unknown-offer"


# -- conflicts with the current state -------------------------------------------------------


class Conflict(DispatchError):
    """The request is well-formed but the current state does not allow it."""

    code = "conflict"


class DuplicateId(Conflict):
    code = "duplicate-id"


class IllegalTransition(Conflict):
    """A status change the state machine does not allow (e.g. cancel after pickup)."""

    code = "illegal-transition"


class CourierOffShift(Conflict):
    code = "courier-off-shift"


class StaleWrite(Conflict):
    """A write based on a version of a record that has changed since it was read."""

    code = "stale-write"


class LeaseLost(Conflict):
    """A dispatch decision from a process that no longer holds the city's dispatcher lease.

    Its fencing token is older than the lease's current one (or the lease expired): another
    process may be deciding now, so the late write is refused whole.
    """

    code = "lease-lost"


class LeaseHeld(Conflict):
    """Another process holds the city's dispatcher lease: only it runs the tick."""

    code = "lease-held"


# -- admission refusals ---------------------------------------------------------------------


class Refused(DispatchError):
    """An order the engine will not accept, with the reason in numbers."""

    code = "refused"


class OutsideDeliveryArea(Refused):
    code = "outside-delivery-area"


class WindowInfeasible(Refused):
    code = "window-infeasible"


class NoCourierCapacity(Refused):
    """No courier near the merchant can deliver within the promise, counting the couriers'
    plans and the orders already waiting; the details say the earliest feasible drop-off
    (``earliest_dropoff``, ``None`` when no courier is in reach) and ``late_s`` past the promise."""

    code = "no-courier-capacity"


# -- the state behind the engine --------------------------------------------------------------


class StoreUnavailable(DispatchError):
    """The shared state (Redis) cannot be reached now; nothing was decided. Retry shortly.

    A write whose reply was lost may have been applied: a retry then meets its own write
    (``DuplicateId`` or ``StaleWrite``), never a second copy of it.
    """

    code = "store-unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after_s = retry_after_s


# -- proof of delivery -----------------------------------------------------------------------


class WrongPin(InvalidInput):
    """A delivery PIN that is missing or not the order's (the attempt is counted)."""

    code = "wrong-pin"


class TooManyPinAttempts(DispatchError):
    """Too many wrong PINs for an order: none is tried for ``retry_after_s``."""

    code = "too-many-pin-attempts"

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s

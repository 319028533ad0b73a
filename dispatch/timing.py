"""The stop rules in one place: when the goods change hands at a stop, and when the courier
leaves (the Grubhub MDRP rules, used by routing, pricing, admission, courier events and ETAs).

A courier spends ``service_s`` at a stop: the hand-over happens half of it (rounded down)
after arrival, and it leaves with the rest. At a merchant the hand-over also waits for the
food; at a customer with a scheduled window, for the window's start.

>>> pickup_at(arrive_at=100, ready_at=0, pickup_service_s=241), leave_s(241)
(220, 121)
>>> dropoff_at(arrive_at=100, window_start=0, dropoff_service_s=60)
130
>>> pickup_to_dropoff_s(ride_s=600, pickup_service_s=240, dropoff_service_s=60)
750
"""

from __future__ import annotations

__all__ = ["dropoff_at", "handover_s", "leave_s", "pickup_at", "pickup_to_dropoff_s"]


def handover_s(service_s: int) -> int:
    """Seconds from arriving at a stop to the hand-over: half the service, rounded down."""
    return service_s // 2


def leave_s(service_s: int) -> int:
    """Seconds from the hand-over to leaving the stop: the rest of the service."""
    return service_s - service_s // 2


def pickup_at(arrive_at: int, ready_at: int, pickup_service_s: int) -> int:
    """The pickup hand-over of a courier arriving at ``arrive_at`` for food ready at ``ready_at``."""
    return max(ready_at, arrive_at + handover_s(pickup_service_s))


def dropoff_at(arrive_at: int, window_start: int, dropoff_service_s: int) -> int:
    """The drop-off hand-over of a courier arriving at ``arrive_at``, not before ``window_start``."""
    return max(arrive_at + handover_s(dropoff_service_s), window_start)


def pickup_to_dropoff_s(ride_s: int, pickup_service_s: int, dropoff_service_s: int) -> int:
    """From the pickup hand-over to the drop-off hand-over, riding ``ride_s`` straight there: the
    earliest drop-off is the food's ready time plus this."""
    return leave_s(pickup_service_s) + ride_s + handover_s(dropoff_service_s)

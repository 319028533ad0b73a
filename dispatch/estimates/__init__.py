"""What the engine learns from the events it receives: how late each merchant's food is
against the ready time it was given, per hour of day (see :mod:`dispatch.estimates.prep`)."""

from dispatch.estimates.prep import (
    PrepDelay,
    expected_ready_at,
    learned_delay_s,
    observe_pickup,
    observe_ready,
    remember_stated,
    stated_ready_at,
)

__all__ = [
    "PrepDelay",
    "expected_ready_at",
    "learned_delay_s",
    "observe_pickup",
    "observe_ready",
    "remember_stated",
    "stated_ready_at",
]

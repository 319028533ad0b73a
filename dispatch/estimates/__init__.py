"""What the engine learns from the events it receives: how late each merchant's food is
against the ready time it was given, per hour of day (see :mod:`dispatch.estimates.prep`), and
how long rides really take against the base travel model, per H3 cell and hour of day (see
:mod:`dispatch.estimates.travel`)."""

from dispatch.estimates.prep import (
    PrepDelay,
    expected_ready_at,
    learned_delay_s,
    observe_pickup,
    observe_ready,
    remember_stated,
    stated_ready_at,
)
from dispatch.estimates.travel import (
    LearnedTravel,
    Leg,
    TravelFactors,
    TravelMemo,
    legs_of,
    note_departure,
    observe_arrival,
    observe_ping,
    ride_arrives,
    ride_leaves,
    rides_start,
    travel_factors,
)

__all__ = [
    "LearnedTravel",
    "Leg",
    "PrepDelay",
    "TravelFactors",
    "TravelMemo",
    "expected_ready_at",
    "learned_delay_s",
    "legs_of",
    "note_departure",
    "observe_arrival",
    "observe_pickup",
    "observe_ping",
    "observe_ready",
    "remember_stated",
    "ride_arrives",
    "ride_leaves",
    "rides_start",
    "stated_ready_at",
    "travel_factors",
]

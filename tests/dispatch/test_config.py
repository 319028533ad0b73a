"""DispatchConfig checks each field by its type and range when it is made."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from dispatch.config import DispatchConfig
from dispatch.errors import InvalidInput


def test_the_defaults_and_the_bounds_are_accepted() -> None:
    DispatchConfig()
    DispatchConfig(
        h3_resolution=15,  # the finest H3 resolution
        area_resolution=0,  # the coarsest
        commit_horizon_s=0,  # whole seconds may be 0
        max_bundle_size=1,  # counts start at 1
        bundle_choice_max_orders=0,  # 0 turns bundle choice off
        exact_route_max_tasks=0,  # 0: OR-Tools always
        reposition_travel_share=1,  # shares span 0..1, ints are numbers too
        bundle_choice_time_s=0.0,
        pickup_updates=False,
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        # whole seconds are ints: the example, refused when made, not at place_order
        (
            {"promise_s": 1800.5},
            "promise_s",
            "promise_s must be a number >= 1 in whole seconds (an int), got 1800.5",
        ),
        # ... even when the float is whole
        ({"pickup_service_s": 240.0}, "pickup_service_s", "in whole seconds (an int), got 240.0"),
        # a bool is no number of seconds
        ({"max_early_s": True}, "max_early_s", "in whole seconds (an int), got True"),
        # numbers in strings are not numbers
        ({"quote_valid_s": "300"}, "quote_valid_s", "in whole seconds (an int), got '300'"),
        # seconds are never negative
        (
            {"join_max_wait_s": -1},
            "join_max_wait_s",
            "join_max_wait_s must be a number >= 0 in whole seconds (an int), got -1",
        ),
        # a promise and a window last at least a second
        ({"promise_s": 0}, "promise_s", "promise_s must be a number >= 1 in whole seconds (an int), got 0"),
        ({"max_window_s": 0}, "max_window_s", ">= 1"),
        # counts are positive ints
        (
            {"candidates_per_bundle": 2.5},
            "candidates_per_bundle",
            "candidates_per_bundle must be a number >= 1, a whole number (an int), got 2.5",
        ),
        (
            {"candidates_per_bundle": 0},
            "candidates_per_bundle",
            "candidates_per_bundle must be a number >= 1, a whole number (an int), got 0",
        ),
        ({"max_bundle_size": 0}, "max_bundle_size", ">= 1"),
        # limits where 0 turns something off are ints >= 0
        ({"bundle_choice_max_orders": -5}, "bundle_choice_max_orders", ">= 0"),
        ({"exact_route_max_tasks": 6.5}, "exact_route_max_tasks", "an int"),
        # cost weights are whole numbers >= 0 (the route objective takes only those)
        ({"lateness_weight": 0.5}, "lateness_weight", "a whole number (an int)"),
        ({"travel_weight": -1}, "travel_weight", ">= 0"),
        # H3 resolutions are 0..15
        (
            {"h3_resolution": 16},
            "h3_resolution",
            "h3_resolution must be a number >= 0 and <= 15, a whole number (an int), got 16",
        ),
        ({"area_resolution": -1}, "area_resolution", ">= 0 and <= 15"),
        # real numbers: finite, in range
        (
            {"reference_speed_mps": 0},
            "reference_speed_mps",
            "reference_speed_mps must be a number > 0, finite, got 0",
        ),
        ({"reference_speed_mps": float("inf")}, "reference_speed_mps", "> 0, finite, got inf"),
        ({"route_time_limit_s": 0.0}, "route_time_limit_s", "> 0"),
        ({"bundle_choice_time_s": float("nan")}, "bundle_choice_time_s", ">= 0, finite, got nan"),
        ({"bundle_choice_time_s": -0.1}, "bundle_choice_time_s", ">= 0"),
        ({"reposition_travel_share": 1.5}, "reposition_travel_share", ">= 0 and <= 1, finite, got 1.5"),
        ({"reposition_travel_share": None}, "reposition_travel_share", "finite, got None"),
        # switches are bools, not truthy values
        ({"pickup_updates": 1}, "pickup_updates", "pickup_updates must be true or false, got 1"),
        ({"refuse_infeasible_promises": "no"}, "refuse_infeasible_promises", "true or false"),
        # the city names the Redis hash tag: no braces
        ({"city": "a{b}"}, "city", "without braces"),
        ({"city": ""}, "city", "non-empty"),
    ],
)
def test_a_bad_value_is_refused_by_name(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        DispatchConfig(**changes)
    assert err.value.details["field"] == field


@pytest.mark.parametrize("name", [f.name for f in fields(DispatchConfig) if f.type == "int"])
def test_every_whole_number_field_refuses_a_fraction(name: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{name} must be"):
        DispatchConfig(**{name: getattr(DispatchConfig(), name) + 0.5})


@pytest.mark.parametrize("name", [f.name for f in fields(DispatchConfig) if f.type == "float"])
def test_every_real_number_field_takes_an_int(name: str) -> None:
    assert getattr(DispatchConfig(**{name: 1}), name) == 1

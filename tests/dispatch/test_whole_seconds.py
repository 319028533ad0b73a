"""Times and counts are whole numbers: one rule (``ranges.is_whole``) for every engine entry point,
so a float or a bool (``True`` is an ``int`` to Python) is refused alike everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch import DeliveryArea, Dispatcher, InvalidInput, Merchant
from dispatch.errors import InvalidWindow
from dispatch.models import Window
from dispatch.ranges import is_whole
from tests.conftest import CENTRE, destination


@pytest.mark.parametrize(
    ("value", "whole"), [(0, True), (1800, True), (True, False), (1.0, False), ("1", False)]
)
def test_is_whole(value: Any, whole: bool) -> None:
    assert is_whole(value) is whole


@pytest.mark.parametrize("bad", [True, 1.0, 1.5])
def test_every_entry_point_refuses_the_same_non_whole_values(bad: Any) -> None:
    d = Dispatcher()
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    with pytest.raises(InvalidInput, match="now must be whole seconds"):
        d.tick(bad)
    with pytest.raises(InvalidInput, match="shift_end must be whole seconds"):
        d.start_shift("c1", CENTRE, now=0, shift_end=bad)
    with pytest.raises(InvalidInput, match="ready_at must be whole seconds"):
        d.place_order("o1", "m1", destination(CENTRE, 500, 0), now=0, ready_at=bad)
    with pytest.raises(InvalidWindow, match="window bounds must be whole seconds"):
        Window(bad, 1800)
    assert d.store.get_courier("c1") is None and d.store.get_order("o1") is None

from __future__ import annotations

import math

import pytest

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, Location, Merchant

CENTRE = Location(52.5200, 13.4050)


def destination(origin: Location, distance_m: float, bearing_deg: float) -> Location:
    """The point ``distance_m`` from ``origin`` along a great circle (same sphere as geo)."""
    r = 6_371_008.8
    d = distance_m / r
    b = math.radians(bearing_deg)
    lat1, lng1 = math.radians(origin.lat), math.radians(origin.lng)
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lng2 = lng1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
    )
    return Location(math.degrees(lat2), math.degrees(lng2))


@pytest.fixture
def config() -> DispatchConfig:
    return DispatchConfig(city="test")


@pytest.fixture
def dispatcher(config: DispatchConfig) -> Dispatcher:
    d = Dispatcher(config=config)
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    return d

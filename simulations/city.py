"""Seeded synthetic cities: merchants with delivery radii, courier shifts, a stream of orders."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dispatch.models import DeliveryArea, Location, Merchant, Window

__all__ = ["CityPlan", "CourierShift", "OrderRequest", "offset", "synthetic_city"]

_M_PER_DEG_LAT = 111_195.0


def offset(origin: Location, east_m: float, north_m: float) -> Location:
    """The point ``east_m`` east and ``north_m`` north of ``origin`` (local flat approximation)."""
    lat = origin.lat + north_m / _M_PER_DEG_LAT
    lng = origin.lng + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(origin.lat)))
    return Location(round(lat, 7), round(lng, 7))


@dataclass(frozen=True, slots=True)
class CourierShift:
    courier_id: str
    start: Location
    on_at: int
    off_at: int
    speed_mps: float
    capacity: int


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order a customer will try to place at ``placed_at`` (it may be refused)."""

    order_id: str
    merchant_id: str
    dropoff: Location
    placed_at: int
    ready_at: int | None = None
    window: Window | None = None


@dataclass(frozen=True, slots=True)
class CityPlan:
    name: str
    centre: Location
    merchants: tuple[Merchant, ...]
    shifts: tuple[CourierShift, ...]
    requests: tuple[OrderRequest, ...]


def synthetic_city(
    *,
    seed: int = 7,
    n_merchants: int = 6,
    n_couriers: int = 8,
    n_orders: int = 40,
    duration_s: int = 5400,
    radius_km: float = 4.0,
    centre: Location | None = None,
    name: str = "demo-berlin",
    scheduled_share: float = 0.1,
) -> CityPlan:
    """A city whose merchants cluster near the centre and customers spread around them.

    Some customers live beyond their merchant's radius (they are refused), and some ask
    for a scheduled window, a few of them too early to be met.
    """
    rng = random.Random(seed)
    centre = centre or Location(52.5200, 13.4050)
    merchants = []
    for i in range(n_merchants):
        r, a = rng.uniform(0, 0.45 * radius_km * 1000), rng.uniform(0, 2 * math.pi)
        merchants.append(
            Merchant(
                id=f"m{i + 1}",
                location=offset(centre, r * math.cos(a), r * math.sin(a)),
                area=DeliveryArea(radius_m=float(rng.choice([2000, 2500, 3000, 3500]))),
                prep_s=rng.choice([300, 480, 600, 720, 900]),
            )
        )
    shifts = []
    for i in range(n_couriers):
        r, a = rng.uniform(0, radius_km * 1000), rng.uniform(0, 2 * math.pi)
        on = rng.choice([0, 0, 0, 600, 1200])
        shifts.append(
            CourierShift(
                courier_id=f"c{i + 1}",
                start=offset(centre, r * math.cos(a), r * math.sin(a)),
                on_at=on,
                off_at=on + duration_s + 3600,
                speed_mps=rng.choice([4.0, 4.5, 5.0, 7.0]),
                capacity=rng.choice([2, 3, 3, 4]),
            )
        )
    requests = []
    times = sorted(rng.randrange(60, max(120, duration_s - 900)) for _ in range(n_orders))
    for i, placed in enumerate(times):
        merchant = rng.choice(merchants)
        radius = merchant.area.radius_m or 3000.0
        # ~10% of customers live a little beyond the radius
        dist = rng.uniform(0.2, 1.12) * radius
        a = rng.uniform(0, 2 * math.pi)
        dropoff = offset(merchant.location, dist * math.cos(a), dist * math.sin(a))
        window = None
        if rng.random() < scheduled_share:
            # some customers ask for a short window very soon: the kitchen cannot make those
            start = placed + rng.choice([300, 1200, 1800, 2700])
            window = Window(start, start + rng.choice([600, 1200, 1800]))
        requests.append(OrderRequest(f"o{i + 1}", merchant.id, dropoff, placed, window=window))
    return CityPlan(name, centre, tuple(merchants), tuple(shifts), tuple(requests))

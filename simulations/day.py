"""A scenario made concrete for one seed: merchants, shifts, order requests, and the truth.

Everything random is drawn here, up front, from streams named by purpose (so that, say,
a different fleet does not change which customers order), except what depends on how the
day unfolds (each ride's factor, each courier's decline), which the :class:`Truth` draws
from its own streams in the order the world asks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from dispatch.config import DispatchConfig
from dispatch.geo import GreatCircleTravel
from dispatch.models import DeliveryArea, Location, Merchant, Window
from dispatch.timing import handover_s, leave_s
from simulations.city import CityPlan, CourierShift, OrderRequest, offset
from simulations.scenario import Scenario

__all__ = ["Day", "Truth", "build_day"]


@dataclass(slots=True)
class Truth:
    """What really happens, which the engine is not told. ``Truth()`` is a world without
    uncertainty: food ready when stated, rides as modelled, nobody declines or cancels."""

    #: actual preparation = stated x this, per order
    prep_factor: dict[str, float] = field(default_factory=dict)
    #: when the customer cancels, if the food is not picked up by then
    cancel_at: dict[str, int] = field(default_factory=dict)
    #: a shift's real start when it is not the planned one; ``None`` = the courier never comes
    shift_start: dict[str, int | None] = field(default_factory=dict)
    decline_probability: float = 0.0
    ride_sigma: float = 0.0
    ride_hour_factor: tuple[float, ...] = (1.0,) * 24
    seed: int = 0
    _rides: random.Random = field(init=False)
    _declines: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rides = random.Random(f"{self.seed}:rides")
        self._declines = random.Random(f"{self.seed}:declines")

    @property
    def exact_rides(self) -> bool:
        return self.ride_sigma == 0 and all(f == 1.0 for f in self.ride_hour_factor)

    def ride_s(self, model_s: int, depart_at: int) -> int:
        """How long a ride the travel model puts at ``model_s`` really takes."""
        if self.exact_rides or model_s == 0:
            return model_s
        median = self.ride_hour_factor[(depart_at // 3600) % 24]
        factor = median * math.exp(self._rides.gauss(0.0, self.ride_sigma)) if self.ride_sigma else median
        return max(1, round(model_s * factor))

    def declines(self) -> bool:
        """Whether the courier turns down the assignment just offered."""
        return self.decline_probability > 0 and self._declines.random() < self.decline_probability

    def ready_at(self, order_id: str, stated_ready_at: int, stated_prep_s: int) -> int:
        """When the food is really ready: the kitchen starts when the engine's plan says it
        does (``stated_ready_at - stated_prep_s``) and takes ``stated_prep_s`` x the factor."""
        factor = self.prep_factor.get(order_id, 1.0)
        if factor == 1.0 or stated_prep_s == 0:
            return stated_ready_at
        return stated_ready_at - stated_prep_s + round(stated_prep_s * factor)


@dataclass(frozen=True, slots=True)
class Day:
    scenario: Scenario
    seed: int
    plan: CityPlan
    truth: Truth
    config: DispatchConfig
    vehicle_of: dict[str, str]


def _stream(seed: int, purpose: str) -> random.Random:
    return random.Random(f"{seed}:{purpose}")


def _clock_slots(s: Scenario, rng: random.Random, n: int) -> list[int]:
    """``n`` placement times in [start, end), following the hourly profile."""
    edges = []
    weights = []
    t = s.start_s
    while t < s.end_s:
        hour_end = min(s.end_s, (t // 3600 + 1) * 3600)
        weights.append(s.demand.hourly_profile[(t // 3600) % 24] * (hour_end - t))
        edges.append((t, hour_end))
        t = hour_end
    spans = rng.choices(edges, weights=weights, k=n) if n else []
    return sorted(rng.randrange(a, b) for a, b in spans)


def build_day(scenario: Scenario, seed: int) -> Day:
    """The scenario's city, fleet, demand and truth for ``seed``."""
    s = scenario
    centre = Location(s.city.lat, s.city.lng)
    mspec = s.city.merchants
    # merchants: clusters of restaurants spread over the inner part of the city
    rng = _stream(seed, "merchants")
    clusters = []
    for _ in range(mspec.clusters):
        r = s.city.radius_km * 1000 * 0.6 * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        clusters.append(offset(centre, r * math.cos(a), r * math.sin(a)))
    config = s.dispatch_config()
    merchants = []
    popularity = []
    for i in range(mspec.count):
        c = clusters[i % len(clusters)]
        sd = mspec.cluster_spread_km * 1000 / 2
        radius = rng.choice(mspec.delivery_radius_m) if mspec.delivery_radius_m else 0.0
        location = offset(c, rng.gauss(0, sd), rng.gauss(0, sd))
        prep_s = round(rng.choice(mspec.prep_minutes) * 60)
        if mspec.radius_within_promise and mspec.delivery_polygon is None:
            radius = min(radius, _reach_m(config, prep_s))
        area = (
            DeliveryArea(radius_m=radius)
            if mspec.delivery_polygon is None
            else DeliveryArea(polygon=mspec.delivery_polygon)
        )
        merchants.append(Merchant(id=f"m-{i + 1}", location=location, area=area, prep_s=prep_s))
        popularity.append(math.exp(rng.gauss(0, mspec.popularity_sigma)) if mspec.popularity_sigma else 1.0)

    # fleet: shifts x scale, vehicles by share, starting anywhere in the city
    rng = _stream(seed, "fleet")
    shifts = []
    vehicle_of: dict[str, str] = {}
    vehicles = s.fleet.vehicles
    n = 0
    for spec in s.fleet.shifts:
        for _ in range(round(spec.couriers * s.fleet.scale)):
            n += 1
            v = rng.choices(vehicles, weights=[v.share for v in vehicles])[0]
            r = s.city.radius_km * 1000 * 0.7 * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            cid = f"c-{n}"
            vehicle_of[cid] = v.name
            shifts.append(
                CourierShift(
                    cid,
                    offset(centre, r * math.cos(a), r * math.sin(a)),
                    spec.start_s,
                    spec.end_s,
                    round(v.speed_kmh / 3.6, 3),
                    v.capacity,
                )
            )

    # demand: a customer somewhere (a hotspot or anywhere), ordering from a merchant that
    # delivers there (by popularity), or, when none does, from the nearest one (refused)
    rng = _stream(seed, "demand")
    times = _clock_slots(s, rng, s.demand.orders)
    lat0 = math.radians(s.city.lat)
    m_per_deg_lng = 111_195.0 * math.cos(lat0)
    mx = np.array([(m.location.lng - s.city.lng) * m_per_deg_lng for m in merchants])
    my = np.array([(m.location.lat - s.city.lat) * 111_195.0 for m in merchants])
    radii = np.array([m.area.radius_m or math.inf for m in merchants])
    pop = np.array(popularity)
    spots = s.city.hotspots
    requests = []
    window_s = round(s.rules.window_minutes * 60)
    for i, placed in enumerate(times):
        if not spots or rng.random() < s.city.uniform_share:
            r = s.city.radius_km * 1000 * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            ex, ny = r * math.cos(a), r * math.sin(a)
        else:
            h = rng.choices(spots, weights=[h.weight for h in spots])[0]
            sd = h.spread_km * 1000 / 2
            ex = (h.lng - s.city.lng) * m_per_deg_lng + rng.gauss(0, sd)
            ny = (h.lat - s.city.lat) * 111_195.0 + rng.gauss(0, sd)
        dist = np.hypot(mx - ex, my - ny)
        serving = np.flatnonzero(dist <= radii * 0.98)
        if serving.size:
            w = pop[serving]
            k = int(serving[int(np.searchsorted(np.cumsum(w), rng.random() * float(w.sum()), side="right"))])
        else:
            k = int(np.argmin(dist - radii))
        dropoff = offset(centre, ex, ny)
        window = None
        if rng.random() < s.demand.scheduled_share:
            lo, hi = s.demand.scheduled_lead_minutes
            start = placed + round(rng.uniform(lo, hi) * 60)
            window = Window(start, start + window_s)
        requests.append(OrderRequest(f"o-{i + 1}", merchants[k].id, dropoff, placed, window=window))

    truth = _truth(s, seed, merchants, shifts, requests)
    plan = CityPlan(s.name, centre, tuple(merchants), tuple(shifts), tuple(requests))
    return Day(s, seed, plan, truth, config, vehicle_of)


def _reach_m(config: DispatchConfig, prep_s: int) -> float:
    """The farthest drop-off an ASAP order of a kitchen of ``prep_s`` can reach within the
    promise, by the engine's admission rule (ready + hand-overs + the direct ride at the
    reference speed), so a platform would not list the merchant any farther away."""
    ride_s = config.promise_s - prep_s - leave_s(config.pickup_service_s)
    ride_s -= handover_s(config.dropoff_service_s) + 1  # the ride is rounded up to whole seconds
    return max(100.0, ride_s * config.reference_speed_mps / GreatCircleTravel().road_factor)


def _truth(
    s: Scenario,
    seed: int,
    merchants: list[Merchant],
    shifts: list[CourierShift],
    requests: list[OrderRequest],
) -> Truth:
    u = s.uncertainty
    if not u.enabled:
        return Truth(seed=seed)
    rng = _stream(seed, "kitchens")
    bias = {m.id: u.prep_median * math.exp(rng.gauss(0, u.prep_bias_sigma)) for m in merchants}
    rng = _stream(seed, "orders")
    prep: dict[str, float] = {}
    cancel: dict[str, int] = {}
    for req in requests:
        prep[req.order_id] = bias[req.merchant_id] * math.exp(rng.gauss(0, u.prep_noise_sigma))
        if rng.random() < u.cancel_probability:
            lo, hi = u.cancel_after_minutes
            cancel[req.order_id] = req.placed_at + round(rng.uniform(lo, hi) * 60)
    rng = _stream(seed, "shifts")
    starts: dict[str, int | None] = {}
    for shift in shifts:
        if rng.random() < u.no_show_probability:
            starts[shift.courier_id] = None
        elif rng.random() < u.late_start_probability and u.late_start_mean_minutes > 0:
            late = shift.on_at + round(rng.expovariate(1 / (u.late_start_mean_minutes * 60)))
            starts[shift.courier_id] = late if late < shift.off_at else None
    return Truth(
        prep_factor=prep,
        cancel_at=cancel,
        shift_start=starts,
        decline_probability=u.decline_probability,
        ride_sigma=u.ride_sigma,
        ride_hour_factor=u.ride_hour_factor,
        seed=seed,
    )

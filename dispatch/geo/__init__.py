"""Geography: distances, travel-time models, H3 indexes of couriers and of delivery areas.

Distances are metres on a sphere of radius :data:`EARTH_RADIUS_M`, times are whole seconds,
speeds metres per second. Travel-time models sit behind one :class:`TravelModel` protocol:
:class:`GreatCircleTravel` for live cities and :class:`PlanarTravel`, which reproduces the
Grubhub MDRP formula exactly. :class:`CourierIndex` finds couriers through an H3 ``grid_disk``
sized by the travel budget, never by looking at every courier; :class:`AreaIndex` decides
delivery areas exactly and caches a per-cell verdict so most points skip the exact test.

>>> chicago = Location(41.8781, -87.6298)
>>> index = CourierIndex(resolution=8)
>>> index.upsert("c1", Location(41.8800, -87.6298), speed_mps=4.5)
>>> index.upsert("c2", Location(41.9500, -87.6298), speed_mps=4.5)
>>> index.within(chicago, 600, GreatCircleTravel())
[('c1', 62)]
"""

from dispatch.geo.areas import AreaIndex, CellVerdict
from dispatch.geo.cells import CourierIndex, disk_k_for, location_to_cell
from dispatch.geo.distance import EARTH_RADIUS_M, haversine_m, haversine_matrix_m
from dispatch.geo.travel import (
    GreatCircleTravel,
    PlanarTravel,
    TravelModel,
    planar_to_location,
    seconds_from,
    seconds_to,
)
from dispatch.models import Location  # noqa: F401  (the doctest above uses it)

__all__ = [
    "EARTH_RADIUS_M",
    "AreaIndex",
    "CellVerdict",
    "CourierIndex",
    "GreatCircleTravel",
    "PlanarTravel",
    "TravelModel",
    "disk_k_for",
    "haversine_m",
    "haversine_matrix_m",
    "location_to_cell",
    "planar_to_location",
    "seconds_from",
    "seconds_to",
]

"""Distances on the sphere, scalar and as numpy matrices; array type aliases."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from dispatch.errors import InvalidInput
from dispatch.models import Location

__all__ = ["EARTH_RADIUS_M", "FloatArray", "IntArray", "haversine_m", "haversine_matrix_m"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EARTH_RADIUS_M: float = 6_371_008.8
"""Mean Earth radius (IUGG), metres."""

QUARTER_CIRCUMFERENCE_M: Final = math.pi / 2 * EARTH_RADIUS_M

# A point on a cell's edge may be given to either cell: H3 rounds in a projected plane, so a
# point of a cell can lie a hair (nanometres) outside the cell's polygon. Every geometric
# argument below widens cells by this much before it trusts a verdict.
CELL_SLACK_REL: Final = 1e-6
CELL_SLACK_M: Final = 0.01


# -- distances -------------------------------------------------------------------------------


def haversine_latlng_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    # The same operations, in the same order, as haversine_matrix_m.
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    s_dlat = math.sin((p2 - p1) * 0.5)
    s_dlng = math.sin(math.radians(lng2 - lng1) * 0.5)
    h = s_dlat * s_dlat + (math.cos(p1) * math.cos(p2)) * (s_dlng * s_dlng)
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle distance between two locations, metres.

    >>> haversine_m(Location(41.88, -87.63), Location(41.88, -87.63))
    0.0
    >>> round(haversine_m(Location(0.0, 0.0), Location(1.0, 0.0)), 1)
    111195.1
    """
    return haversine_latlng_m(a.lat, a.lng, b.lat, b.lng)


def haversine_matrix_m(
    lat1: npt.ArrayLike, lng1: npt.ArrayLike, lat2: npt.ArrayLike, lng2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distances from every point of one set to every point of another, metres.

    Parameters
    ----------
    lat1, lng1 : array_like, shape (n,)
        Degrees of the first set.
    lat2, lng2 : array_like, shape (m,)
        Degrees of the second set.

    Returns
    -------
    numpy.ndarray of float64, shape (n, m)

    Examples
    --------
    >>> haversine_matrix_m([0.0, 1.0], [0.0, 0.0], [0.0], [0.0]).round(1)
    array([[     0. ],
           [111195.1]])
    """
    p_lat1 = np.asarray(lat1, dtype=np.float64)
    p_lng1 = np.asarray(lng1, dtype=np.float64)
    p_lat2 = np.asarray(lat2, dtype=np.float64)
    p_lng2 = np.asarray(lng2, dtype=np.float64)
    if p_lat1.ndim != 1 or p_lat1.shape != p_lng1.shape:
        raise InvalidInput("lat1 and lng1 must be 1-D arrays of the same length", field="lat1")
    if p_lat2.ndim != 1 or p_lat2.shape != p_lng2.shape:
        raise InvalidInput("lat2 and lng2 must be 1-D arrays of the same length", field="lat2")
    p1 = np.radians(p_lat1)[:, None]
    p2 = np.radians(p_lat2)[None, :]
    s_dlat = np.sin((p2 - p1) * 0.5)
    s_dlng = np.sin(np.radians(p_lng2[None, :] - p_lng1[:, None]) * 0.5)
    h = s_dlat * s_dlat + (np.cos(p1) * np.cos(p2)) * (s_dlng * s_dlng)
    result: FloatArray = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return result

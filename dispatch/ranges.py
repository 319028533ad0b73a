"""The physical range of every number the engine takes from outside, and the id rule: one place.

The API schemas publish and enforce these ranges (:mod:`api.schemas`), and the engine's records
and :class:`~dispatch.engine.Dispatcher` entry points check them again, so a value that no
courier, kitchen or clock can have is refused at the edge with the range in the message, and
never reaches the solvers (a speed of ``1e-300`` m/s once overflowed every tick of a city).

>>> SPEED_MPS.check(4.5, "speed_mps")
4.5
>>> SPEED_MPS.check(1e-300, "speed_mps")
Traceback (most recent call last):
...
dispatch.errors.InvalidInput: speed_mps must be in [0.5, 40] m/s, got 1e-300
>>> PREP_S.in_minutes().describe()
'[0, 240] min'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar

from dispatch.errors import InvalidInput

__all__ = [
    "CAPACITY",
    "DELIVERY_RADIUS_M",
    "EVENT_SEQ",
    "ID_PATTERN",
    "MAX_TIMESTAMP",
    "ORDER_ID_PATTERN",
    "POLYGON_VERTICES",
    "PREP_S",
    "PROMISE_S",
    "RADIUS_M",
    "SCHEDULE_AHEAD_S",
    "SHIFT_S",
    "SPEED_MPS",
    "TIMESTAMP",
    "Range",
    "check_id",
    "check_order_id",
]

N = TypeVar("N", int, float)


def is_whole(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a whole number (an ``int``; ``True`` and ``1.0`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Range:
    """A closed range ``[low, high]`` in ``unit`` (``whole``: integers only).

    ``describe()`` is what error messages and the API schema descriptions say.
    """

    low: float
    high: float
    unit: str
    whole: bool = False

    def describe(self) -> str:
        def fmt(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else repr(x)

        return f"[{fmt(self.low)}, {fmt(self.high)}] {self.unit}".rstrip()

    def contains(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.whole and not is_whole(value):
            return False
        return math.isfinite(value) and self.low <= value <= self.high

    def check(self, value: N, field: str) -> N:
        """``value`` if it is in the range, else :class:`InvalidInput` naming the range."""
        if not self.contains(value):
            kind = "a whole number " if self.whole else ""
            raise InvalidInput(
                f"{field} must be {kind}in {self.describe()}, got {value!r}",
                field=field,
                low=self.low,
                high=self.high,
            )
        return value

    def in_minutes(self) -> Range:
        """The same range in whole minutes (the API's unit for durations people type)."""
        assert self.unit == "s", self.unit
        return Range(math.ceil(self.low / 60), math.floor(self.high / 60), "min", whole=True)

    def json_schema(self) -> dict[str, Any]:
        """``minimum``/``maximum`` for OpenAPI (whole ranges as integers)."""
        if self.whole:
            return {"minimum": int(self.low), "maximum": int(self.high)}
        return {"minimum": self.low, "maximum": self.high}


#: Last POSIX second of year 9999: later "times" are typos. Every ``now`` and ``*_at``.
MAX_TIMESTAMP = 253_402_300_799
TIMESTAMP = Range(0, MAX_TIMESTAMP, "s", whole=True)
#: Walking pace to a fast motorbike in town.
SPEED_MPS = Range(0.5, 40.0, "m/s")
#: Orders a courier carries at once (a cargo bike or a van; the Grubhub replays use 10).
CAPACITY = Range(1, 20, "orders", whole=True)
#: A shift is at most a day long.
SHIFT_S = Range(1, 24 * 3600, "s", whole=True)
#: Typical preparation time, placement to ready.
PREP_S = Range(0, 4 * 3600, "s", whole=True)
#: An ASAP promise, placement to drop-off.
PROMISE_S = Range(60, 4 * 3600, "s", whole=True)
#: How far ahead a scheduled window may start, and food be ready.
SCHEDULE_AHEAD_S = Range(0, 7 * 24 * 3600, "s", whole=True)
#: A delivery radius a merchant may set through the API.
DELIVERY_RADIUS_M = Range(1.0, 100_000.0, "m")
#: A delivery radius the engine accepts: replays of instances without delivery areas use the
#: top of it as "no limit" (:mod:`simulations.mdrp`).
RADIUS_M = Range(1.0, 1_000_000.0, "m")
#: Vertices of a delivery polygon, all rings of all its parts together.
POLYGON_VERTICES = Range(4, 10_000, "vertices", whole=True)
#: Event sequence numbers (``after=``): a signed 64-bit integer, as Redis stream ids take them.
EVENT_SEQ = Range(0, 2**63 - 1, "", whole=True)

#: Merchant, courier and external ids: letters, digits, ``_`` and ``-``, with dots only inside
#: (never ``.`` or ``..``, which paths would resolve), 1 to 64 characters.
ID_PATTERN = r"^[A-Za-z0-9_-](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?$"
#: The API's order ids: ``<merchant_id>:<external_id>``.
ORDER_ID_PATTERN = ID_PATTERN.removesuffix("$") + ":" + ID_PATTERN.removeprefix("^")
_ID = re.compile(ID_PATTERN)
_ORDER_ID = re.compile(ORDER_ID_PATTERN)


def check_id(value: object, what: str) -> str:
    """``value`` if it is a valid id (:data:`ID_PATTERN`), else :class:`InvalidInput`.

    >>> check_id("..", "merchant id")
    Traceback (most recent call last):
    ...
    dispatch.errors.InvalidInput: merchant id must be 1-64 of A-Z a-z 0-9 _ - (dots only inside), got '..'
    """
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-64 of A-Z a-z 0-9 _ - (dots only inside), got {_short(value)}", field="id"
        )
    return value


def check_order_id(value: object) -> str:
    """An order id: an id, or ``<merchant_id>:<external_id>`` of two ids (the API's form)."""
    if not isinstance(value, str) or not (_ID.fullmatch(value) or _ORDER_ID.fullmatch(value)):
        raise InvalidInput(
            "order id must be an id or <merchant_id>:<external_id>, each 1-64 of A-Z a-z 0-9 _ - "
            f"(dots only inside), got {_short(value)}",
            field="id",
        )
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

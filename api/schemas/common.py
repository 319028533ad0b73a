"""Shapes every resource shares: ids, points, POSIX-second timestamps, windows.

Request models are strict (no ``"1"`` for 1, no ``true`` for a number) and refuse unknown
fields, so the published schema and what the service accepts are the same thing.
Times are POSIX seconds (``*_at``), distances metres (``*_m``), durations say their unit.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.fields import FieldInfo

from dispatch.models import Location, Window
from dispatch.ranges import ID_PATTERN, MAX_TIMESTAMP, ORDER_ID_PATTERN, TIMESTAMP, Range

__all__ = [
    "ID_PATTERN",
    "MAX_TIMESTAMP",
    "ORDER_ID_PATTERN",
    "Id",
    "Latitude",
    "Longitude",
    "OrderId",
    "Point",
    "PublicModel",
    "RequestModel",
    "TimeWindow",
    "Timestamp",
    "WholeNumber",
    "in_range",
    "range_field",
]


def _integral(value: object) -> object:
    """JSON has one number type: ``5.0`` is the integer 5 (JSON Schema agrees); ``5.5`` is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Metadata for whole numbers in request bodies, after their constraints:
#: ``Annotated[int, Field(ge=0), WholeNumber]`` is strict (no strings, no booleans), but ``5.0`` is 5.
WholeNumber = BeforeValidator(_integral)


def range_field(r: Range, description: str) -> FieldInfo:
    """Schema metadata of a ranged number: its bounds (``minimum``/``maximum``) and description."""
    info: FieldInfo = Field(
        description=f"{description}; in {r.describe()}", json_schema_extra=r.json_schema()
    )
    return info


def in_range(r: Range, name: str) -> AfterValidator:
    """The check of a ranged number (:mod:`dispatch.ranges`), with the range in its message."""

    def check(value: float) -> float:
        if not r.contains(value):
            raise ValueError(f"{name} must be in {r.describe()}, got {value!r}")
        return value

    return AfterValidator(check)


Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False, description="degrees, WGS 84")]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False, description="degrees, WGS 84")]
Timestamp = Annotated[
    int, range_field(TIMESTAMP, "POSIX seconds (UTC)"), WholeNumber, in_range(TIMESTAMP, "timestamp")
]


class RequestModel(BaseModel):
    """Base of request bodies: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PublicModel(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(frozen=True)


class Point(RequestModel):
    lat: Latitude
    lng: Longitude

    def to_location(self) -> Location:
        return Location(self.lat, self.lng)

    @classmethod
    def of(cls, location: Location) -> Point:
        return cls.model_construct(lat=location.lat, lng=location.lng)


class TimeWindow(RequestModel):
    """``[start_at, end_at]`` in POSIX seconds; the engine checks its length and that it is ahead."""

    start_at: Timestamp
    end_at: Timestamp

    def to_window(self) -> Window:
        return Window(self.start_at, self.end_at)

    @classmethod
    def of(cls, window: Window) -> TimeWindow:
        return cls.model_construct(start_at=window.start, end_at=window.end)

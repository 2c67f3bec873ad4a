"""Georeferenced pixel grids: the CRS, affine transform and shape that travel with every array."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS

from geo.errors import CrsError


@dataclass(frozen=True)
class GeoGrid:
    """A north-up pixel grid.

    Attributes:
        crs: coordinate reference system (a projected UTM CRS for analysis grids).
        transform: affine pixel→CRS transform of the grid's upper-left corner.
        width: columns.
        height: rows.
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.crs is None:
            raise CrsError("a grid needs a CRS; minewatch never assumes EPSG:4326")
        if not isinstance(self.crs, CRS):
            object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        if self.width <= 0 or self.height <= 0:
            raise CrsError(f"grid size must be positive, got {self.width}×{self.height} px")

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` as numpy orders it."""
        return (self.height, self.width)

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (metres for UTM)."""
        return float(self.transform.a)

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in CRS units squared (m² for UTM)."""
        return abs(self.transform.a * self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        left, top = self.transform.c, self.transform.f
        right = left + self.width * self.transform.a
        bottom = top + self.height * self.transform.e
        return (left, bottom, right, top)

    @classmethod
    def from_bounds(
        cls, bounds: tuple[float, float, float, float], crs: CRS | str, resolution: float
    ) -> "GeoGrid":
        """Grid covering ``bounds`` with pixel edges snapped outward to multiples of ``resolution``."""
        left, bottom, right, top = bounds
        left = math.floor(left / resolution) * resolution
        bottom = math.floor(bottom / resolution) * resolution
        right = math.ceil(right / resolution) * resolution
        top = math.ceil(top / resolution) * resolution
        width = max(1, int(round((right - left) / resolution)))
        height = max(1, int(round((top - bottom) / resolution)))
        return cls(
            CRS.from_user_input(crs),
            Affine(resolution, 0.0, left, 0.0, -resolution, top),
            width,
            height,
        )

    def to_dict(self) -> dict:
        """JSON-friendly form (for manifests and STAC ``proj:`` fields)."""
        return {
            "crs": self.crs.to_string(),
            "transform": list(self.transform)[:6],
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GeoGrid":
        return cls(CRS.from_user_input(d["crs"]), Affine(*d["transform"][:6]), int(d["width"]), int(d["height"]))

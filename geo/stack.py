"""Containers that carry arrays together with their georeferencing and provenance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from geo.errors import RasterError
from geo.grid import GeoGrid


@dataclass(frozen=True)
class ReflectanceStack:
    """A time series of surface-reflectance images on one grid.

    Attributes:
        data: float32 ``(time, band, y, x)`` surface reflectance (0–1, baseline offset already
            applied); NaN where the source had nodata.
        scl: uint8 ``(time, y, x)`` L2A Scene Classification Layer on the same grid (0 = no data),
            or ``None`` when the source has none.
        bands: band ids in the order of ``data``'s band axis (see :mod:`geo.bands`).
        times: acquisition datetimes (UTC), one per time step.
        item_ids: STAC item id of each time step.
        grid: the pixel grid (CRS, transform, shape) of every image.
    """

    data: np.ndarray
    scl: np.ndarray | None
    bands: tuple[str, ...]
    times: tuple[dt.datetime, ...]
    item_ids: tuple[str, ...]
    grid: GeoGrid

    def __post_init__(self) -> None:
        if self.data.ndim != 4:
            raise RasterError(f"reflectance stack must be (time, band, y, x), got shape {self.data.shape}")
        t, b, h, w = self.data.shape
        if b != len(self.bands):
            raise RasterError(f"stack has {b} bands but {len(self.bands)} band names {self.bands}")
        if (h, w) != self.grid.shape:
            raise RasterError(f"stack is {h}×{w} px but its grid is {self.grid.shape}")
        if len(self.times) != t or len(self.item_ids) != t:
            raise RasterError("stack needs one time and one item id per time step")
        if self.scl is not None and self.scl.shape != (t, h, w):
            raise RasterError(f"SCL shape {self.scl.shape} does not match the stack {(t, h, w)}")

    def band_index(self, band_id: str) -> int:
        try:
            return self.bands.index(band_id)
        except ValueError:
            raise RasterError(f"band {band_id} is not in this stack (has {', '.join(self.bands)})") from None


@dataclass(frozen=True)
class Composite:
    """A per-period composite.

    Attributes:
        data: float32 ``(band, y, x)`` reflectance; NaN where no clear observation exists.
        clear_count: uint16 ``(y, x)`` number of clear observations that went into each pixel.
        bands: band ids in ``data`` order.
        grid: pixel grid.
    """

    data: np.ndarray
    clear_count: np.ndarray
    bands: tuple[str, ...]
    grid: GeoGrid

    def band(self, band_id: str) -> np.ndarray:
        """The 2-D array of one band."""
        try:
            return self.data[self.bands.index(band_id)]
        except ValueError:
            raise RasterError(f"band {band_id} is not in this composite (has {', '.join(self.bands)})") from None

    @property
    def valid(self) -> np.ndarray:
        """Boolean ``(y, x)``: True where at least one clear observation exists."""
        return self.clear_count > 0

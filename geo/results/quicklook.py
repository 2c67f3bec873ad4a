"""The report's true-colour quicklook: a decimated RGB mosaic of a period's task composites."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling

from geo.grid import GeoGrid

log = logging.getLogger(__name__)

#: Longest side (px) of the RGB quicklook used for the report map.
QUICKLOOK_PX = 1200


def quicklook_grid(grid: GeoGrid) -> tuple[GeoGrid, int]:
    """The grid of the RGB quicklook (at most :data:`QUICKLOOK_PX` on its longest side) and its decimation step."""
    step = max(1, int(np.ceil(max(grid.shape) / QUICKLOOK_PX)))
    t = grid.transform
    return GeoGrid(grid.crs, Affine(t.a * step, t.b, t.c, t.d, t.e * step, t.f),
                   -(-grid.width // step), -(-grid.height // step)), step


def pixel_offsets(src, grid: GeoGrid) -> tuple[int, int]:
    """``(row, col)`` of an open raster's upper-left pixel on ``grid`` (same CRS and pixel lattice)."""
    col = int(round((src.transform.c - grid.transform.c) / grid.transform.a))
    row = int(round((src.transform.f - grid.transform.f) / grid.transform.e))
    return row, col



def rgb_from_tasks(run_dir: Path, period: str, grid: GeoGrid) -> tuple[np.ndarray, GeoGrid] | None:
    """True-colour quicklook from ``tasks/<period>/*/composite.tif``, as the run makes it.

    Returns ``(rgb, qgrid)``: float reflectance ``(3, y, x)`` (B04, B03, B02) on
    :func:`quicklook_grid` of ``grid``, or None when the run folder holds no task composites.
    """
    paths = sorted((run_dir / "tasks" / period).glob("*/composite.tif"))
    if not paths:
        return None
    qgrid, step = quicklook_grid(grid)
    rgb = np.zeros((3, *qgrid.shape), np.float32)
    for path in paths:
        with rasterio.open(path) as src:
            descr = list(src.descriptions)
            try:
                idx = [descr.index(b) + 1 for b in ("B04", "B03", "B02")]
            except ValueError:
                log.warning("%s lacks B04/B03/B02 band descriptions; no map image", path)
                return None
            row, col = (v // step for v in pixel_offsets(src, grid))
            h, w = -(-src.height // step), -(-src.width // step)
            part = src.read(idx, out_shape=(3, h, w), resampling=Resampling.nearest).astype(np.float32) / 10000.0
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + h, qgrid.height), min(col + w, qgrid.width)
            if r1 > r0 and c1 > c0:
                rgb[:, r0:r1, c0:c1] = part[:, r0 - row : r1 - row, c0 - col : c1 - col]
    return rgb, qgrid

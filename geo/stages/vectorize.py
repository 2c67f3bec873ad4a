"""Class rasters → footprint polygons with areas in m² computed in the grid's (UTM) CRS."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio.features
from shapely.geometry import shape

from geo.errors import CrsError
from geo.grid import GeoGrid

#: Names of the class values (0 background, 1 cleared land, 2 leaching pond; extend by appending).
CLASS_NAMES: dict[int, str] = {0: "background", 1: "cleared_land", 2: "leaching_pond"}

#: Class-map value for pixels never observed (outside the AOI, or never seen clear): the rasters' nodata,
#: neither background nor a mining class. Polygonising and area counting ignore it.
NOT_OBSERVED = 255

COLUMNS = ["class", "class_name", "area_m2", "confidence", "geometry"]


def empty_footprints(crs) -> gpd.GeoDataFrame:
    """An empty footprint table with the standard columns."""
    return gpd.GeoDataFrame(
        {"class": np.array([], dtype=np.int64), "class_name": np.array([], dtype=object),
         "area_m2": np.array([], dtype=np.float64), "confidence": np.array([], dtype=np.float64)},
        geometry=gpd.GeoSeries([], crs=crs), crs=crs,
    )


def polygonize(
    classes: np.ndarray,
    grid: GeoGrid,
    *,
    confidence: np.ndarray | None = None,
    min_area_m2: float = 0.0,
    region: np.ndarray | None = None,
    min_pond_area_m2: float | None = None,
) -> gpd.GeoDataFrame:
    """Turn a class map into one polygon per 4-connected region of equal non-zero class.

    Args:
        classes: integer ``(y, x)`` class map (0 = background is not vectorised).
        grid: georeferencing of ``classes``; its CRS must be projected (metres).
        confidence: optional float ``(y, x)`` in 0–1; each polygon gets the mean over its pixels.
        min_area_m2: polygons smaller than this are dropped.
        min_pond_area_m2: pond polygons (class 2) smaller than this are dropped instead (``None``: ``min_area_m2``).
        region: optional bool ``(y, x)``, **True inside the area of interest**; pixels outside are ignored.

    Returns:
        GeoDataFrame in ``grid.crs`` with columns ``class``, ``class_name``, ``area_m2``,
        ``confidence`` (NaN when not given) and polygon ``geometry``.
    """
    if classes.shape != grid.shape:
        raise CrsError(f"class map shape {classes.shape} does not match its grid {grid.shape}")
    if not grid.crs.is_projected:
        raise CrsError(f"polygon areas need a projected (UTM) grid, got {grid.crs}; build the grid with geo.aoi.analysis_grid")
    cls = np.asarray(classes).astype(np.int32)
    cls = np.where(cls == NOT_OBSERVED, 0, cls)  # "not observed" is not a class
    if region is not None:
        cls = np.where(region, cls, 0)
    from skimage.measure import label  # local: keeps import time of light callers low

    labels = np.zeros(cls.shape, dtype=np.int32)
    offset = 0
    region_class: list[int] = []
    for value in sorted(int(v) for v in np.unique(cls) if v != 0):
        lab, n = label(cls == value, connectivity=1, return_num=True)
        labels[lab > 0] = lab[lab > 0] + offset
        region_class.extend([value] * n)
        offset += n
    if offset == 0:
        return empty_footprints(grid.crs)
    conf_mean = np.full(offset + 1, np.nan)
    if confidence is not None:
        conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
        sums = np.bincount(labels.ravel(), weights=conf.ravel(), minlength=offset + 1)
        counts = np.bincount(labels.ravel(), minlength=offset + 1)
        conf_mean = sums / np.maximum(counts, 1)
    geoms, klass, confs = [], [], []
    for geom, lab_id in rasterio.features.shapes(labels, mask=labels > 0, connectivity=4, transform=grid.transform):
        lab_id = int(lab_id)
        geoms.append(shape(geom))
        klass.append(region_class[lab_id - 1])
        confs.append(float(conf_mean[lab_id]))
    gdf = gpd.GeoDataFrame(
        {"class": np.array(klass, dtype=np.int64), "class_name": [CLASS_NAMES.get(k, str(k)) for k in klass],
         "confidence": np.array(confs, dtype=np.float64)},
        geometry=gpd.GeoSeries(geoms, crs=grid.crs), crs=grid.crs,
    )
    gdf["area_m2"] = gdf.geometry.area.astype(np.float64)
    floor = np.where(gdf["class"].to_numpy() == 2, min_area_m2 if min_pond_area_m2 is None else min_pond_area_m2,
                     min_area_m2)
    gdf = gdf[gdf["area_m2"].to_numpy() >= floor].reset_index(drop=True)
    return gdf[COLUMNS]


def class_areas(gdf: gpd.GeoDataFrame) -> dict[str, float]:
    """Total ``area_m2`` per class name (every class in :data:`CLASS_NAMES` but background)."""
    out = {name: 0.0 for k, name in CLASS_NAMES.items() if k != 0}
    for name, area in gdf.groupby("class_name")["area_m2"].sum().items():
        out[str(name)] = float(area)
    return out

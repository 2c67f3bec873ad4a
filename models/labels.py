"""Training labels and labelled GeoTIFFs, checked before anything trains; shared by ``[[images]]`` and ``[[scenes]]``.

:func:`burn_labels` reads a labels file (GeoJSON/GPKG polygons, or points with a radius, with a ``class``
property), refuses what would silently train on nothing (an unreadable or empty file, projected coordinates in a
file that says lon/lat, labels wholly outside the sample's area) and burns the labels onto the sample's grid with
:func:`models.data.rasterize_labels`. Labels partly outside the area are trained on where they overlap it and
logged as a warning with the number of features dropped.

:func:`image_sample` does the same for one ``[[images]]`` entry and also refuses an image that is not Sentinel-2
L2A digital numbers (reflectance 0–1, 8-bit) or holds no valid pixel under the labels.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from shapely.geometry import box

from geo.errors import ConfigError, CrsError, NoDataError, RasterError
from geo.grid import GeoGrid
from models.vector_source import pick_layer, split_layer

log = logging.getLogger(__name__)

#: Label value of pixels no label covers (ignored by the loss).
IGNORE = 255
#: Largest radius (m) a point label may stand for: a pool is tens of metres across, and a radius of kilometres
#: labels whole hillsides as pond (and its disc of offsets took all memory in point scoring).
MAX_POINT_RADIUS_M = 500.0
LABELS_FIX = "give a GeoJSON/GPKG of labelled polygons or points"
IMAGE_FIX = "give a Sentinel-2 L2A GeoTIFF (digital numbers) whose band descriptions name its bands"
CLASS_FIX = "give every feature class = 1 / cleared_land or 2 / leaching_pond (0 / background for known non-mining ground)"
WGS84 = CRS.from_epsg(4326)


def existing_file(path: Path, what: str, fix: str) -> Path:
    """``path`` if its file (without a ``|layername=`` part) is a file; else a :class:`ConfigError` naming ``what``
    (the config key) and the path."""
    file, _ = split_layer(path)
    if file.is_dir():
        raise ConfigError(f"{what} {file} is a folder, not a file; {fix}")
    if not file.is_file():
        raise ConfigError(f"{what} {file} does not exist; {fix}")
    return Path(path)


def extent(bounds, crs: CRS) -> str:
    """``bounds`` (west, south, east, north in ``crs``) for a message."""
    w, s, e, n = (float(v) for v in bounds)
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        return f"no finite extent in {crs.to_string()}"
    if crs.is_geographic:
        return f"lon {w:.4f}–{e:.4f}, lat {s:.4f}–{n:.4f}"
    return f"x {w:.0f}–{e:.0f}, y {s:.0f}–{n:.0f} in {crs.to_string()}"


def read_vector(path, what: str, fix: str):
    """A vector file (or one layer of it, ``file|layername=layer``; :func:`pick_layer`) as a GeoDataFrame; an
    unreadable one is one :class:`RasterError` line naming ``what`` and ``fix``."""
    import geopandas as gpd

    file, layer = pick_layer(path, what)
    try:
        return gpd.read_file(file, **({"layer": layer} if layer is not None else {}))
    except (OSError, ValueError, RuntimeError) as exc:  # pyogrio's DataSourceError etc. are RuntimeErrors
        msg = " ".join(str(exc).split()).split(" It might help")[0].rstrip(" ;.") or type(exc).__name__  # GDAL's hint
        raise RasterError(f"cannot read {what} {path} ({msg}); {fix}") from None


def read_labels(path: Path):
    """The labels file as a GeoDataFrame of the features that have a geometry.

    Raises:
        RasterError: unreadable file, a feature without a class, a class that is no whole number.
        ConfigError: no feature with a geometry.
        CrsError: coordinates outside longitude/latitude range in a file whose CRS is geographic.
    """
    gdf = read_vector(path, "labels", LABELS_FIX)
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]  # notna() warns about empties
    if gdf.empty:
        raise ConfigError(f"labels {path} hold no features; draw at least one polygon or point with a class")
    if "class" not in gdf.columns or gdf["class"].isna().any():
        n = len(gdf) if "class" not in gdf.columns else int(gdf["class"].isna().sum())
        raise RasterError(f"{n} of {len(gdf)} feature(s) in labels {path} have no 'class' value; {CLASS_FIX}")
    for v in gdf["class"]:
        if isinstance(v, (bool, np.bool_)) or (isinstance(v, (float, np.floating)) and not float(v).is_integer()):
            raise RasterError(f"class {v!r} in labels {path} is not 0, 1 or 2; {CLASS_FIX}")
    if gdf.crs is not None and gdf.crs.is_geographic:
        w, s, e, n = gdf.total_bounds
        if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
            raise CrsError(
                f"labels {path} have coordinates outside longitude/latitude range ({w:.0f}, {s:.0f}, {e:.0f}, "
                f"{n:.0f}) but their CRS is {gdf.crs.to_string()} (a GeoJSON without a 'crs' member is read as "
                "EPSG:4326): they look projected; re-export them in EPSG:4326 or as a GPKG that keeps the CRS"
            )
    return gdf


def burn_labels(labels: Path, grid: GeoGrid, *, where: str, area_desc: str, fix: str, point_radius_m: float,
                area=None, region: np.ndarray | None = None, report_crs: CRS | None = None,
                use: str = "training on") -> np.ndarray:
    """Burn ``labels`` onto ``grid`` (255 where no label covers) after checking they fall inside the area.

    Args:
        labels: GeoJSON/GPKG of polygons or points with a ``class`` property.
        grid: the sample's projected grid.
        where: the entry in messages (``"images[0]"``).
        area_desc: the area in messages (``"the image … (x …, y …)"``).
        fix: what to check besides the labels' CRS, ending the "no label inside" message.
        point_radius_m: radius (m) that turns point labels into discs.
        area: the area as a shapely geometry in ``grid.crs`` (default: the grid's bounds).
        region: bool ``(y, x)``, True inside the area (default: the whole grid).
        report_crs: CRS in which the labels' extent is reported (default: ``grid.crs``).
        use: what is done with the labels inside, for the warning about those outside (``"scoring"`` in evaluate).

    Raises:
        ConfigError: no feature, or no labelled pixel inside the area.
        RasterError / CrsError: as :func:`read_labels` and :func:`models.data.rasterize_labels`.
    """
    import shapely

    from models.data import buffer_points, rasterize_labels

    gdf = read_labels(labels)
    raw = rasterize_labels(labels, grid, point_radius_m=point_radius_m, unlabelled=IGNORE, frame=gdf)  # CRS, classes
    on_grid = gdf.to_crs(grid.crs).geometry
    geoms = shapely.make_valid(np.asarray([buffer_points(g, point_radius_m) for g in on_grid.values], dtype=object))
    inside = shapely.intersects(geoms, area if area is not None else box(*grid.bounds))
    hit = raw != IGNORE
    if region is not None:
        hit &= region
    if not hit.any():
        rc = report_crs or grid.crs
        raise ConfigError(
            f"{where}: no label in {labels} lies inside {area_desc}; the labels span "
            f"{extent(gdf.to_crs(rc).total_bounds, rc)}; check the labels' CRS and {fix}"
        )
    n_out = int((~inside).sum())
    if n_out:
        log.warning("%s: %d of %d label feature(s) in %s lie outside %s and are dropped; %s the %d inside",
                    where, n_out, len(inside), labels, area_desc, use, len(inside) - n_out)
    return raw


def check_image_values(data: np.ndarray, path: Path, where: str) -> np.ndarray:
    """The valid-pixel mask of ``data`` (float32 ``(band, y, x)`` reflectance read from ``path``) after refusing an
    image that holds nothing to learn from or score: no valid pixel, or values far too small for reflectance.

    Raises:
        NoDataError: no pixel is finite in every band (all nodata, all zero DN, a NaN offset).
        RasterError: the brightest valid reflectance is below :data:`geo.sources.geotiff.MIN_PEAK_REFLECTANCE` (an 8-bit export).
    """
    valid = np.isfinite(data).all(axis=0)
    if not valid.any():
        raise NoDataError(f"{where}: image {path} has no valid pixel (every pixel is nodata in some band); "
                          "check its nodata value or export it again")
    from geo.sources.geotiff import check_plausible_reflectance

    check_plausible_reflectance(data, path, where=f"{where}: ")
    return valid


def image_sample(path: Path, labels: Path, *, where: str, offset: float | None = None,
                 point_radius_m: float = 20.0, unlabelled: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One ``[[images]]`` entry as ``(float32 (band, y, x) reflectance in ANALYSIS_BANDS order, uint8 labels)``.

    The labels are those :func:`models.data.rasterize_labels` burns with ``unlabelled`` outside every label.

    Raises:
        RasterError / CrsError: unreadable image, no CRS, missing band descriptions (:func:`geo.sources.geotiff.read_geotiff`),
            a geographic CRS, values that are not L2A digital numbers; unreadable or bad labels.
        NoDataError: no valid pixel, or none under the labels.
        ConfigError: no labels, or none inside the image.
    """
    from geo.sources.geotiff import read_geotiff

    scene = read_geotiff(path, offset=offset)
    grid = scene.grid
    if not grid.crs.is_projected:
        raise CrsError(f"{where}: image {path} is in {grid.crs.to_string()}, a geographic CRS; training needs a "
                       "projected 10 m grid — reproject it (gdalwarp -t_srs EPSG:326NN -tr 10 10)")
    valid = check_image_values(scene.data, path, where)
    desc = f"the image {path} ({extent(grid.bounds, grid.crs)})"
    raw = burn_labels(labels, grid, where=where, area_desc=desc, fix="that they were drawn on this image",
                      point_radius_m=point_radius_m)
    if not ((raw != IGNORE) & valid).any():
        raise NoDataError(f"{where}: every labelled pixel of {labels} lies on nodata pixels of {path}; "
                          "check the image's nodata value or label where it has data")
    y = np.where(raw != IGNORE, raw, np.uint8(unlabelled)).astype(np.uint8)
    return scene.data, y

"""Write results: GeoJSON (RFC 7946, EPSG:4326), GeoPackage layers, GeoTIFF rasters, CSV.

Every writer is atomic (see :mod:`geo.fsutil`): an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from geo.errors import CrsError, OutputError
from geo.fsutil import atomic_path
from geo.grid import GeoGrid
from geo.results.styles import write_layer_styles


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        raise CrsError("footprints have no CRS; minewatch never assumes EPSG:4326 — set the CRS of the source grid")
    return gdf.to_crs(4326)


def write_geojson(gdf: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write ``gdf`` as RFC 7946 GeoJSON (EPSG:4326, right-hand-rule rings, 7 decimals)."""
    path = Path(path)
    out = to_wgs84(gdf)
    with atomic_path(path) as tmp:
        out.to_file(tmp, driver="GeoJSON", engine="pyogrio", layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7"})
    return path


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: str | Path, *, styles: dict[str, str] | None = None) -> Path:
    """Write several layers into one GeoPackage (replacing the file) in their own CRS.

    ``styles`` maps layer name → QGIS QML; they are stored in the ``layer_styles`` table so QGIS opens
    the layers styled.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        for name, gdf in layers.items():
            if gdf.crs is None:
                raise CrsError(f"layer {name} has no CRS; set it before writing")
            # GeoPackage 1.2: GDAL < 3.7 (QGIS 3.22 LTR on Debian 12) warns that 1.4 files are only partly supported.
            gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio", VERSION="1.2")
        if styles:
            write_layer_styles(tmp, {k: v for k, v in styles.items() if k in layers})
    return path


def _tiff_profile(array: np.ndarray, grid: GeoGrid, nodata: float | None) -> tuple[np.ndarray, dict]:
    """The ``(band, y, x)`` array and the tiled, deflated GeoTIFF profile minewatch writes it with."""
    arr = array[None] if array.ndim == 2 else array
    if arr.shape[1:] != grid.shape:
        raise CrsError(f"array shape {arr.shape[1:]} does not match grid {grid.shape}")
    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": arr.shape[0], "dtype": arr.dtype.name,
        "crs": grid.crs, "transform": grid.transform, "compress": "deflate", "nodata": nodata,
    }
    if grid.width >= 256 and grid.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return arr, profile


def write_raster(array: np.ndarray, grid: GeoGrid, path: str | Path, *, nodata: float | None = None,
                 descriptions: tuple[str, ...] | None = None) -> Path:
    """Write a ``(y, x)`` or ``(band, y, x)`` array as a tiled, deflated GeoTIFF on ``grid``."""
    path = Path(path)
    arr, profile = _tiff_profile(array, grid, nodata)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
            for i, d in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, d)
    return path


def raster_bytes(array: np.ndarray, grid: GeoGrid, *, nodata: float | None = None,
                 descriptions: tuple[str, ...] | None = None) -> bytes:
    """:func:`write_raster`'s GeoTIFF as bytes, made in memory (a task's result travels back this way)."""
    from rasterio.io import MemoryFile

    arr, profile = _tiff_profile(array, grid, nodata)
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(arr)
            for i, d in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, d)
        return bytes(mem.getbuffer())


def read_raster(path: str | Path) -> tuple[np.ndarray, GeoGrid]:
    """Read a single-band GeoTIFF as ``(array, grid)``; a file without CRS is an error."""
    with rasterio.open(path) as src:
        if src.crs is None:
            raise CrsError(f"{path} has no CRS; minewatch never assumes EPSG:4326 — assign one (gdal_edit -a_srs)")
        return src.read(1), GeoGrid(src.crs, src.transform, src.width, src.height)


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    except OutputError:
        raise
    return path

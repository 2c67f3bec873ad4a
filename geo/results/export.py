"""Write results: GeoJSON (RFC 7946, EPSG:4326), GeoPackage layers, GeoTIFF rasters, CSV.

Every writer is atomic (see :mod:`geo.fsutil`): an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely

from geo.errors import CrsError, OutputError
from geo.fsutil import atomic_path, ensure_room
from geo.grid import GeoGrid
from geo.results.styles import write_layer_styles


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        raise CrsError("footprints have no CRS; minewatch never assumes EPSG:4326 — set the CRS of the source grid")
    return gdf.to_crs(4326)


#: Columns written as OGR Date fields (QGIS's temporal controller and ``ogr2ogr`` see dates, not text).
DATE_COLUMNS = ("period_start", "period_end")


def _write_layer(gdf: gpd.GeoDataFrame, path: Path, layer: str, driver: str, **options) -> None:
    """Write ``gdf`` as OGR layer ``layer`` (pyogrio's raw writer, so :data:`DATE_COLUMNS` become Date fields).

    The layer name is given explicitly: GeoJSON's ``name`` member is the layer name, never the temporary file's.
    """
    import pyogrio.raw

    geom = gdf.geometry
    kinds = set(geom.geom_type.dropna())
    multi = bool(kinds) and kinds <= {"Polygon", "MultiPolygon"} and "MultiPolygon" in kinds
    gtype = "MultiPolygon" if multi else (kinds.pop() if len(kinds) == 1 else ("Polygon" if not kinds else "Unknown"))
    fields, data = [], []
    for col in gdf.columns:
        if col == gdf.geometry.name:
            continue
        s = gdf[col]
        if col in DATE_COLUMNS:
            arr = np.array([str(v)[:10] for v in s], dtype="datetime64[D]")
        elif s.dtype == object:
            arr = np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in s],
                           dtype=object)
        else:
            arr = s.to_numpy()
        fields.append(str(col))
        data.append(arr)
    pyogrio.raw.write(str(path), shapely.to_wkb(geom.values), data, fields, layer=layer, driver=driver,
                      geometry_type=gtype, crs=gdf.crs.to_wkt(), promote_to_multi=multi, append=path.exists(),
                      **options)


def write_geojson(gdf: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write ``gdf`` as RFC 7946 GeoJSON (EPSG:4326, right-hand-rule rings, 7 decimals), named after the file."""
    path = Path(path)
    out = to_wgs84(gdf)
    with atomic_path(path) as tmp:
        _write_layer(out, tmp, path.stem, "GeoJSON", layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7"})
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
            _write_layer(gdf, tmp, name, "GPKG", dataset_options={"VERSION": "1.2"})
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
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_room(path.parent, arr.nbytes, path)  # before GDAL starts: it would fail part-way, noisily
    try:
        with atomic_path(path) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(arr)
                for i, d in enumerate(descriptions or (), start=1):
                    dst.set_band_description(i, d)
    except rasterio.errors.RasterioIOError:  # "Write failed": the disk filled up meanwhile?
        ensure_room(path.parent, arr.nbytes, path)
        raise
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
    """Read a single-band GeoTIFF as ``(array, grid)``; a file without CRS is an error.

    Raises:
        RasterError: unreadable (damaged, truncated, a folder), naming the file; CrsError: no CRS.
    """
    from geo.errors import RasterError

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise CrsError(f"{path} has no CRS; minewatch never assumes EPSG:4326 — assign one (gdal_edit -a_srs)")
            return src.read(1), GeoGrid(src.crs, src.transform, src.width, src.height)
    except rasterio.errors.RasterioError as exc:
        msg = " ".join(str(exc).split())[:200]
        raise RasterError(f"cannot read {path} ({msg}); it is damaged: rerun the 'minewatch run' command that made "
                          "this folder to rebuild it from its tasks") from None


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            # 10 digits: with 6, a growth of 74.54996 % read back as 74.55 and printed +74.6 where the report said +74.5
            df.to_csv(tmp, index=False, float_format="%.10g")
    except OutputError:
        raise
    return path

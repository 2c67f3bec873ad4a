"""Class and confidence rasters that explain themselves in any GIS.

``classmap_<period>.tif`` is uint8 with

- a colour table (GDAL palette: QGIS opens it as "Paletted/Unique values", ArcGIS and ``gdalinfo`` show it),
- category names (``classmap_<period>.tif.aux.xml``, GDAL's PAM side-car that ``gdalinfo`` and QGIS read),
- nodata :data:`~geo.stages.vectorize.NOT_OBSERVED` (255) for pixels outside the AOI or never seen clear in the
  season, distinct from 0 = background (seen, not mined),
- a QGIS style side-car ``classmap_<period>.qml`` (paletted renderer with the class labels), loaded by QGIS as the
  layer's default style.

``confidence_<period>.tif`` is uint8 percent (0–100, the one confidence unit of every minewatch file) with the same
nodata 255.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio

from geo.fsutil import atomic_path, write_text
from geo.grid import GeoGrid
from geo.stages.vectorize import NOT_OBSERVED

#: value → (category name, legend label, RGBA). Colours match the vector styles (geo.results.styles).
CLASS_TABLE: dict[int, tuple[str, str, tuple[int, int, int, int]]] = {
    0: ("background", "Background (seen, not mined)", (214, 222, 204, 255)),
    1: ("cleared_land", "Cleared land", (230, 120, 40, 255)),
    2: ("leaching_pond", "Leaching pond", (0, 200, 220, 255)),
    NOT_OBSERVED: ("not_observed", "Not observed (outside AOI or never clear)", (0, 0, 0, 0)),
}


def _profile(grid: GeoGrid, **extra) -> dict:
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "uint8",
               "crs": grid.crs, "transform": grid.transform, "compress": "deflate", "nodata": NOT_OBSERVED}
    if grid.width >= 256 and grid.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    profile.update(extra)
    return profile


def category_names_xml() -> str:
    """GDAL PAM XML naming each class value (``<CategoryNames>``: one entry per value from 0 to 255)."""
    names = [CLASS_TABLE[v][0] if v in CLASS_TABLE else "" for v in range(256)]
    cats = "".join(f"<Category>{escape(n)}</Category>" for n in names)
    return (f'<PAMDataset><PAMRasterBand band="1"><Description>class</Description>'
            f"<CategoryNames>{cats}</CategoryNames></PAMRasterBand></PAMDataset>\n")


def classmap_qml() -> str:
    """QGIS 3.22 style: paletted renderer over band 1 with the class labels (not observed stays transparent)."""
    entries = "".join(
        f'<paletteEntry value="{v}" color="#{r:02x}{g:02x}{b:02x}" alpha="{a}" label="{escape(label)}"/>'
        for v, (_, label, (r, g, b, a)) in CLASS_TABLE.items() if v != NOT_OBSERVED)
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.22.0" styleCategories="Symbology"><pipe>'
            '<rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">'
            f"<rasterTransparency/><colorPalette>{entries}</colorPalette></rasterrenderer>"
            '<brightnesscontrast brightness="0" contrast="0" gamma="1"/>'
            '<huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128"'
            ' colorizeBlue="128" colorizeStrength="100"/><rasterresampler maxOversampling="2"/></pipe>'
            "<blendMode>0</blendMode></qgis>\n")


def write_classmap(classes: np.ndarray, grid: GeoGrid, path: str | Path) -> Path:
    """Write a uint8 class map with colour table, nodata 255, category names (``.aux.xml``) and a ``.qml`` style."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **_profile(grid, photometric="palette")) as dst:
            dst.write(classes.astype(np.uint8)[None])
            dst.write_colormap(1, {v: rgba for v, (_, _, rgba) in CLASS_TABLE.items()})
            dst.set_band_description(1, "class")
            dst.update_tags(1, **{f"CLASS_{v}": name for v, (name, _, _) in CLASS_TABLE.items()})
    write_text(path.with_name(path.name + ".aux.xml"), category_names_xml())
    write_text(path.with_suffix(".qml"), classmap_qml())
    return path


def write_confidence(conf_pct: np.ndarray, grid: GeoGrid, path: str | Path) -> Path:
    """Write confidence in percent (uint8 0–100; 255 = not observed)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **_profile(grid)) as dst:
            dst.write(conf_pct.astype(np.uint8)[None])
            dst.set_band_description(1, "confidence_pct")
            dst.update_tags(1, units="percent", valid_range="0-100", nodata_meaning="not observed")
    return path


def observed_classes(classes: np.ndarray) -> np.ndarray:
    """``classes`` with "not observed" read as background (for counts of mined pixels)."""
    return np.where(classes == NOT_OBSERVED, 0, classes)

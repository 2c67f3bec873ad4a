"""Read a local multi-band GeoTIFF whose band descriptions name Sentinel-2 bands into reflectance."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geo.bands import ANALYSIS_BANDS, band_ids
from geo.errors import ConfigError, RasterError
from geo.grid import GeoGrid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scene:
    """A reflectance image with georeferencing.

    Attributes:
        data: float32 ``(band, y, x)`` reflectance (0–1), NaN = nodata.
        bands: band ids of ``data`` in order.
        grid: its pixel grid.
        name: a short label for logs.
    """

    data: np.ndarray
    bands: tuple[str, ...]
    grid: GeoGrid
    name: str = ""


#: Bytes of working memory per pixel and band beyond the raw DN (float32 reflectance, masks, model inputs).
WORK_BYTES_PER_PX_BAND = 12


def available_memory() -> int:
    """Bytes of memory this process may still take (``MemAvailable``, else physical memory)."""
    import os

    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_fits_memory(path, width: int, height: int, bands: int, itemsize: int) -> None:
    """Refuse, before allocating anything, an image whose reading and classifying would not fit in memory.

    Raises:
        RasterError: naming the size, the memory needed and available, and how to cut the image.
    """
    need = width * height * bands * (itemsize + WORK_BYTES_PER_PX_BAND)
    have = available_memory()
    if need > have:
        raise RasterError(f"{path} is {width:,} × {height:,} px × {bands} bands: detecting on it needs about "
                          f"{need / 2**30:,.1f} GiB of memory, more than the {have / 2**30:,.1f} GiB available; cut it "
                          "into tiles (gdal_translate -srcwin) or use 'minewatch run', which works tile by tile")


#: DN offset of L2A processing baseline 04.00 and later (``BOA_ADD_OFFSET``); where even the darkest pixels of every
#: band (water, shade: reflectance near 0) sit above it, the offset is most likely still in.
BASELINE_OFFSET_DN = 1000

#: Floating-point images whose valid values stay at or below this (99.9th percentile) hold reflectance 0–1, not
#: DN: the brightest surfaces reach about 1.2 in reflectance, and DN 2 is a reflectance of 0.0002.
REFLECTANCE_MAX = 2.0


def read_geotiff(path: Path, *, offset: float | None = None, scale: float = 1e-4,
                 bands: tuple[str, ...] = ANALYSIS_BANDS, band_names: tuple[str, ...] | None = None) -> Scene:
    """Read a multi-band GeoTIFF whose band descriptions name Sentinel-2 bands.

    The values are read as one of three things:

    * Bands with GDAL scale/offset metadata (``gdal_translate -a_scale 0.0001 -a_offset -0.1``): reflectance
      ``= value * scale + offset``.
    * Floating-point values that stay at or below :data:`REFLECTANCE_MAX`: already reflectance 0–1, as many
      composites are exported. The log says so.
    * Anything else is DN: reflectance ``= (DN + offset) * scale``. ``offset`` (DN) comes from the argument, else from
      an ``offset`` tag on the dataset or band, else 0.

    Before the second case was recognised, such a file was divided by 10,000, and detection found nothing and exited 0.
    Value 0 (or the nodata value) → NaN. Extra bands are ignored. ``band_names`` names the file's bands in order
    (a stack merged without band descriptions); otherwise the band descriptions must.

    Raises:
        RasterError: unreadable, a band missing or descriptions absent.
        CrsError: no CRS.
    """
    import rasterio

    from geo.errors import CrsError

    try:
        with warnings.catch_warnings():  # no georeferencing is refused below in one line, not a library warning too
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"cannot read raster {path}: {exc}") from None
    with src:
        if src.crs is None:
            raise CrsError(f"{path} has no CRS; minewatch never assumes one — assign it with gdal_edit.py -a_srs")
        if band_names is not None:  # the caller's naming: its mistakes are a ConfigError (exit 2), not the file's
            if len(band_names) != src.count:
                raise ConfigError(f"{path} has {src.count} band(s) but {len(band_names)} name(s) were given "
                                  f"({', '.join(band_names)}); name every band of the file, in order")
            try:
                have = band_ids(list(band_names))
            except RasterError as exc:
                raise ConfigError(f"band names for {path}: {exc}") from None
        else:
            desc = [d or "" for d in src.descriptions]
            try:
                have = band_ids([d for d in desc]) if all(desc) else None
            except RasterError:
                have = None
            if have is None:
                raise RasterError(f"{path}: band descriptions {desc} do not all name Sentinel-2 bands; set them "
                                  "(rio edit-info --bidx N --description B04), or with minewatch detect name the "
                                  "bands in order: --bands B02,B03,B04,B08,B11,B12")
        missing = [b for b in bands if b not in have]
        if missing:
            raise RasterError(f"{path} lacks band(s) {', '.join(missing)} (has {', '.join(have)})")
        if offset is None:
            tag = src.tags().get("offset") or src.tags(have.index(bands[0]) + 1).get("offset")
            offset = float(tag) if tag is not None else 0.0
        idx = [have.index(b) + 1 for b in bands]
        check_fits_memory(path, src.width, src.height, len(idx), np.dtype(src.dtypes[idx[0] - 1]).itemsize)
        raw = src.read(idx)
        nodata = src.nodata if src.nodata is not None else 0
        gdal_scale = np.array([src.scales[i - 1] for i in idx], np.float32)[:, None, None]
        gdal_offset = np.array([src.offsets[i - 1] for i in idx], np.float32)[:, None, None]
        valid = (raw != nodata) & ~np.isnan(raw) if raw.dtype.kind == "f" else raw != nodata
        top = float(np.percentile(raw[valid], 99.9)) if raw.dtype.kind == "f" and valid.any() else np.inf
        if np.any(gdal_scale != 1) or np.any(gdal_offset != 0):
            data = raw.astype(np.float32) * gdal_scale + gdal_offset
            log.info("%s: reflectance from the bands' scale/offset metadata", path)
        elif top <= REFLECTANCE_MAX:
            data = raw.astype(np.float32)
            log.info("%s: floating-point values up to %.2f read as reflectance 0-1 (not DN x 10000)", path, top)
        else:
            data = ((raw.astype(np.float32) + np.float32(offset)) * np.float32(scale))
            if offset == 0 and valid.all(axis=0).any():
                darkest = min(float(np.percentile(raw[b][valid[b]], 0.5)) for b in range(len(idx)))
                if darkest >= BASELINE_OFFSET_DN:
                    log.warning("%s: the darkest 0.5 %% of every band is at DN %d or more (water and shade are near "
                                "0): this looks like L2A processing baseline >= 04.00 with its +%d offset still in; "
                                "if so, pass --offset -1000 (or tag the file offset=-1000)", path, int(darkest),
                                BASELINE_OFFSET_DN)
        data[~valid] = np.nan
        grid = GeoGrid(src.crs, src.transform, src.width, src.height)
    return Scene(data.astype(np.float32), tuple(bands), grid, Path(path).name)

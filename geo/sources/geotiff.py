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


def check_pixel_grid(path, crs, transform) -> None:
    """Refuse a projected image whose pixels are not north-up squares in metres: a rotated, sheared or mirrored
    transform, or a CRS in feet. The detector measures distances and areas in pixels times ``transform.a``;
    before this check, mirrored columns (a negative x pixel size) found 0 footprints and a 30-degree rotation
    halved the cleared land, both exiting 0.

    Raises:
        RasterError: naming the transform or unit, with the gdalwarp line that fixes it.
    """
    if crs is None or not crs.is_projected:
        return  # no or geographic CRS: the callers refuse those with their own line
    t = transform
    fix = f"warp it to a north-up grid in metres: gdalwarp -t_srs EPSG:326NN -tr 10 10 {path} out.tif"
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise RasterError(f"{path} has a rotated, sheared or mirrored pixel grid (pixel size {t.a:g} x {t.e:g}, "
                          f"rotation terms {t.b:g}, {t.d:g}); {fix}")
    unit, factor = crs.linear_units_factor
    if abs(factor - 1.0) > 1e-9:
        raise RasterError(f"{path} is in {crs.to_string()}, whose unit is the {unit} ({factor:g} m), not the metre; {fix}")


#: Images whose brightest valid value reads below this reflectance hold no Sentinel-2 L2A DN or reflectance
#: (an 8-bit export, or reflectance divided by 10,000 twice): even dark forest has NIR above 0.1.
MIN_PEAK_REFLECTANCE = 0.05


def check_plausible_reflectance(data: np.ndarray, path, where: str = "") -> None:
    """Refuse reflectance whose brightest valid pixel is below :data:`MIN_PEAK_REFLECTANCE`: every detector
    calls such an image background and would exit 0 with nothing found.

    Raises:
        RasterError: with the peak found and what the file likely is.
    """
    valid = np.isfinite(data).all(axis=0)
    if not valid.any():
        return  # the callers refuse an image without valid pixels with their own line
    peak = float(data[:, valid].max())
    if peak < MIN_PEAK_REFLECTANCE:
        raise RasterError(
            f"{where}image {path} reads as reflectance of at most {peak:.2g}, so it does not hold Sentinel-2 L2A "
            "digital numbers (0–10000) or reflectance 0–1 (an 8-bit export, or reflectance scaled twice?); "
            "write the L2A DN as uint16")


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
        check_pixel_grid(path, src.crs, src.transform)
        if offset is not None and not np.isfinite(offset):
            raise ConfigError(f"--offset {offset} is not a number of DN; give e.g. --offset -1000, or leave it out")
        offset_given = offset is not None
        if offset is None:
            tag = src.tags().get("offset") or src.tags(have.index(bands[0]) + 1).get("offset")
            try:
                offset = float(tag) if tag is not None else 0.0
            except ValueError:
                raise RasterError(f"{path}: its 'offset' tag {tag!r} is not a number of DN; fix the tag "
                                  "(gdal_edit.py -mo offset=-1000) or pass --offset") from None
        idx = [have.index(b) + 1 for b in bands]
        check_fits_memory(path, src.width, src.height, len(idx), np.dtype(src.dtypes[idx[0] - 1]).itemsize)
        raw = src.read(idx)
        nodata = src.nodata if src.nodata is not None else 0
        gdal_scale = np.array([src.scales[i - 1] for i in idx], np.float32)[:, None, None]
        gdal_offset = np.array([src.offsets[i - 1] for i in idx], np.float32)[:, None, None]
        # inf is no more a measurement than NaN: it made the 99.9th percentile NaN and a reflectance file read as DN
        valid = (raw != nodata) & np.isfinite(raw) if raw.dtype.kind == "f" else raw != nodata
        top = float(np.percentile(raw[valid], 99.9)) if raw.dtype.kind == "f" and valid.any() else np.inf
        scaled = (gdal_scale != 1) | (gdal_offset != 0)
        if scaled.any() and not scaled.all():
            names = [b for b, s_ in zip(bands, scaled.ravel()) if s_]
            raise RasterError(f"{path}: band(s) {', '.join(names)} carry GDAL scale/offset metadata and "
                              f"{', '.join(b for b in bands if b not in names)} do not, so they would be read in "
                              "different units; set it on every band (gdal_edit.py -scale 0.0001 -offset 0) or on none")
        if scaled.any():
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
        if offset_given and offset and (scaled.any() or top <= REFLECTANCE_MAX):
            log.warning("%s holds reflectance (%s), so --offset %g (a DN offset) is not applied", path,
                        "scale/offset metadata" if scaled.any() else "floating-point 0-1", offset)
        data[~valid] = np.nan
        grid = GeoGrid(src.crs, src.transform, src.width, src.height)
    return Scene(data.astype(np.float32), tuple(bands), grid, Path(path).name)

"""Which asset holds a band, how its DN become reflectance, and which hrefs may be read.

Reflectance is ``DN * scale + offset`` with the offset taken from item metadata: the asset's ``raster:bands``
scale/offset, else ``s2:processing_baseline`` (>= 04.00 → −1000 DN); never guessed from the acquisition date.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pystac

from geo.bands import band
from geo.errors import CrsError, RasterError
from geo.sources.remote import redact
from geo.sources.stac import baseline


@dataclass(frozen=True)
class Scaling:
    """How DN become reflectance: ``DN * scale + offset``.

    Attributes:
        scale: reflectance per DN (0.0001 for Sentinel-2 L2A).
        offset: reflectance added after scaling (−0.1 for baseline >= 04.00, else 0).
        source: where the numbers came from (for logs).
    """

    scale: float
    offset: float
    source: str


def asset_for(item: pystac.Item, band_id: str, asset_keys: dict | None = None) -> tuple[str, pystac.Asset]:
    """The asset holding ``band_id``: by an explicit key map, else by Earth Search/PC key aliases."""
    b = band(band_id)
    candidates = []
    if asset_keys and band_id in asset_keys:
        candidates.append(asset_keys[band_id])
    candidates += [b.earth_search, b.planetary_computer, b.id]
    for key in candidates:
        if key in item.assets:
            return key, item.assets[key]
    raise RasterError(
        f"item {item.id} has no asset for band {band_id} (looked for {', '.join(dict.fromkeys(candidates))}; "
        f"it has {', '.join(sorted(item.assets))}); pass asset_keys= for this STAC API"
    )


def scaling_for(item: pystac.Item, asset: pystac.Asset) -> Scaling:
    """Reflectance scaling from metadata; never guessed from the acquisition date.

    Raises:
        RasterError: neither ``raster:bands`` scale/offset nor ``s2:processing_baseline`` is present.
    """
    if item.properties.get("earthsearch:boa_offset_applied") is True:
        return Scaling(1e-4, 0.0, "earthsearch:boa_offset_applied")
    rb = _raster_bands(asset)
    if rb and isinstance(rb[0], dict) and ("offset" in rb[0] or "scale" in rb[0]):
        try:
            scale, offset = float(rb[0].get("scale", 1e-4)), float(rb[0].get("offset", 0.0))
        except (TypeError, ValueError):
            raise RasterError(f"item {item.id} states raster:bands scale/offset that are not numbers "
                              f"({rb[0].get('scale')!r}, {rb[0].get('offset')!r}); fix the catalogue entry") from None
        if not (math.isfinite(scale) and math.isfinite(offset)) or scale <= 0:
            raise RasterError(f"item {item.id} states raster:bands scale {scale} and offset {offset}; a scale must be "
                              "a positive number (0.0001 for L2A) — fix the catalogue entry")
        return Scaling(scale, offset, "raster:bands")
    b = baseline(item)
    if b:
        try:
            major = tuple(int(x) for x in b.split("."))
        except ValueError:
            raise RasterError(f"item {item.id} has a malformed processing baseline {b!r}") from None
        return Scaling(1e-4, -0.1 if major >= (4, 0) else 0.0, f"s2:processing_baseline {b}")
    raise RasterError(
        f"item {item.id} states neither raster:bands scale/offset nor s2:processing_baseline, so its "
        "reflectance offset is unknown; use a catalogue that publishes them (Earth Search v1, Planetary Computer)"
    )


def _raster_bands(asset: pystac.Asset) -> list:
    """The asset's ``raster:bands`` list ([] when absent or not a list)."""
    rb = asset.extra_fields.get("raster:bands")
    return rb if isinstance(rb, list) else []


def _check_href(href: str) -> str:
    scheme = urlsplit(href).scheme.lower()
    if scheme in ("http", "https"):
        return "http"
    if scheme == "file":
        return "file"
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return "file"
    raise RasterError(
        f"asset href {redact(href)} uses scheme {scheme!r}; minewatch reads only http(s) and local files "
        "(use the provider's https hrefs, e.g. Earth Search rather than s3://)"
    )


def _local_path(href: str) -> str:
    return unquote(urlsplit(href).path) if href.lower().startswith("file:") else href


#: ``raster:bands`` data types (STAC raster extension) that name a numpy/GDAL type.
STAC_DATA_TYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                             "float32", "float64"})


@dataclass(frozen=True)
class AssetExpect:
    """What an item says about one asset's pixels, checked against the file once it is open.

    Attributes:
        item_id: the item (for messages).
        data_type: ``raster:bands[0].data_type`` (``uint16`` for L2A reflectance, ``uint8`` for SCL), if stated.
        epsg: the CRS the item states (``proj:epsg`` / ``proj:code`` of the asset, else of the item), if any.
        kind: ``"reflectance"`` or ``"scl"``.
        key: the asset's key in the item (for messages).
        shape: ``proj:shape`` (rows, columns), transform: the first 6 numbers of ``proj:transform``, bbox:
            ``proj:bbox`` (in the asset's CRS): the asset's own, else the item's when its resolution is the asset's
            (:func:`expect_for`); None when not stated.
    """

    item_id: str
    data_type: str | None
    epsg: int | None
    kind: str = "reflectance"
    key: str = ""
    shape: tuple[int, int] | None = None
    transform: tuple[float, ...] | None = None
    bbox: tuple[float, float, float, float] | None = None

    def check(self, src, href: str) -> None:
        """Refuse a file whose data type or CRS contradicts its item, or reflectance that is not digital numbers.

        Raises:
            RasterError: data type differs from ``raster:bands`` (e.g. float32 0–1 where the item says uint16),
                a float reflectance asset where none is stated, or the size/georeferencing differs from
                ``proj:shape``/``proj:transform``/``proj:bbox``. CrsError: CRS differs from ``proj:epsg``.
        """
        got = src.dtypes[0]
        if self.data_type and got != self.data_type:
            raise RasterError(
                f"{redact(href)} holds {got} pixels but item {self.item_id} says raster:bands data_type "
                f"{self.data_type}; the file was replaced or the catalogue is wrong, and reading it would change the "
                "results — fix the catalogue entry or re-export the COG as the item describes it"
            )
        if not self.data_type and self.kind == "reflectance" and got.startswith("float"):
            raise RasterError(
                f"{redact(href)} holds {got} pixels, not Sentinel-2 L2A digital numbers (uint16), and item "
                f"{self.item_id} states no raster:bands data_type; minewatch cannot tell its scaling — use the "
                "catalogue's L2A COGs (uint16 DN)"
            )
        crs_epsg = src.crs.to_epsg() if src.crs is not None else None
        if self.epsg and crs_epsg and crs_epsg != self.epsg:
            raise CrsError(
                f"{redact(href)} is in EPSG:{crs_epsg} but item {self.item_id} says EPSG:{self.epsg} (proj:epsg); "
                "the file was replaced or the catalogue is wrong — fix the catalogue entry"
            )
        self._check_footprint(src, href)

    def _check_footprint(self, src, href: str) -> None:
        """Refuse a file whose size or georeferencing contradicts ``proj:shape``/``proj:transform``/``proj:bbox``
        (a file shifted or cut would silently lose the scene, or part of it, and change the results)."""
        t = src.transform
        px = max(abs(t.a), abs(t.e), 1e-12)
        got, said = None, None
        if self.shape is not None and tuple(self.shape) != (src.height, src.width):
            got, said = f"is {src.height} × {src.width} pixels", f"proj:shape {list(self.shape)}"
        elif self.transform is not None and not (
                all(abs(a - b) <= 1e-6 * px for a, b in zip(self.transform[:2] + self.transform[3:5],
                                                           (t.a, t.b, t.d, t.e)))
                and abs(self.transform[2] - t.c) <= 0.01 * px and abs(self.transform[5] - t.f) <= 0.01 * px):
            got = f"has transform {[_num(v) for v in (t.a, t.b, t.c, t.d, t.e, t.f)]}"
            said = f"proj:transform {[_num(v) for v in self.transform]}"
        elif self.bbox is not None and any(abs(a - b) > 0.01 * px for a, b in zip(self.bbox, src.bounds)):
            got, said = f"covers {[_num(v) for v in src.bounds]}", f"proj:bbox {[_num(v) for v in self.bbox]}"
        if got:
            what = f"asset {self.key!r} of item {self.item_id}" if self.key else f"an asset of item {self.item_id}"
            raise RasterError(
                f"{redact(href)} ({what}) {got} but the item says {said}; the file was replaced or the catalogue "
                "is wrong, and reading it would change the results — fix the catalogue entry or re-export the COG "
                "as the item describes it"
            )


def _epsg_of(fields: dict) -> int | None:
    code = fields.get("proj:epsg")
    if code is None and isinstance(fields.get("proj:code"), str) and fields["proj:code"].upper().startswith("EPSG:"):
        code = fields["proj:code"].split(":", 1)[1]
    try:
        return int(code) if code is not None and not isinstance(code, bool) else None
    except (TypeError, ValueError):
        return None


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 6)


def _numbers(value: object, sizes: tuple[int, ...]) -> tuple[float, ...] | None:
    """``value`` as a tuple of finite numbers when it is a list of one of ``sizes`` lengths, else None."""
    if not isinstance(value, (list, tuple)) or len(value) not in sizes:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
        return None
    return tuple(float(v) for v in value)


def _resolution(asset: pystac.Asset) -> float | None:
    """The asset's pixel size in metres as its metadata states it (``raster:bands`` spatial_resolution, ``gsd``)."""
    rb = _raster_bands(asset)
    for v in ((rb[0].get("spatial_resolution") if rb and isinstance(rb[0], dict) else None),
              asset.extra_fields.get("gsd")):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            return float(v)
    return None


def _footprint_fields(item: pystac.Item, asset: pystac.Asset) -> tuple:
    """(shape, transform, bbox) to check ``asset`` against: each the asset's own ``proj:*``, else the item's, but
    the item's only when its ``proj:transform`` pixel size is the asset's resolution (20 m bands differ from 10 m)."""
    own = asset.extra_fields
    item_t = _numbers(item.properties.get("proj:transform"), (6, 9))
    res = _resolution(asset)
    item_ok = item_t is not None and res is not None and abs(abs(item_t[0]) - res) <= 1e-6 * res
    fields = []
    for key, sizes in (("proj:shape", (2,)), ("proj:transform", (6, 9)), ("proj:bbox", (4,))):
        v = _numbers(own.get(key), sizes) if key in own else (
            _numbers(item.properties.get(key), sizes) if item_ok else None)
        fields.append(v)
    shape, transform, bbox = fields
    if shape is not None and not all(v.is_integer() and v > 0 for v in shape):
        shape = None
    return (tuple(int(v) for v in shape) if shape else None, transform[:6] if transform else None, bbox)


def expect_for(item: pystac.Item, asset: pystac.Asset, kind: str = "reflectance", key: str = "") -> AssetExpect:
    """The :class:`AssetExpect` of ``asset`` (key ``key``) from its ``raster:bands`` and the asset's or item's
    projection (``proj:epsg``/``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``)."""
    rb = _raster_bands(asset)
    dtype = rb[0].get("data_type") if rb and isinstance(rb[0], dict) else None
    if dtype not in STAC_DATA_TYPES:  # "other", a typo: nothing to check against
        dtype = None
    epsg = _epsg_of(asset.extra_fields) or _epsg_of(item.properties)
    shape, transform, bbox = _footprint_fields(item, asset)
    return AssetExpect(item.id, dtype if isinstance(dtype, str) else None, epsg, kind, key, shape, transform, bbox)

"""Which asset holds a band, how its DN become reflectance, and which hrefs may be read.

Reflectance is ``DN * scale + offset`` with the offset taken from item metadata: the asset's ``raster:bands``
scale/offset, else ``s2:processing_baseline`` (>= 04.00 → −1000 DN); never guessed from the acquisition date.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pystac

from geo.bands import band
from geo.errors import RasterError
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
    rb = asset.extra_fields.get("raster:bands") or []
    if rb and isinstance(rb[0], dict) and ("offset" in rb[0] or "scale" in rb[0]):
        return Scaling(float(rb[0].get("scale", 1e-4)), float(rb[0].get("offset", 0.0)), "raster:bands")
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

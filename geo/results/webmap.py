"""The report's interactive map: Leaflet (vendored from npm, inlined) with every season's footprints and sites.

Everything the map needs lives inside the one HTML fragment this module returns, so ``report.html`` works from a
file with the network off: Leaflet's JavaScript and CSS (``static/leaflet``, BSD-2-Clause, its images as data URIs),
minewatch's own script (``static/webmap.js``), the vectors as GeoJSON, the composites as WebP data URIs and Natural
Earth country outlines (``static/ne_countries_110m.geojson``, public domain, via the ``world-atlas`` npm package)
for context instead of a remote tile server.

Belt-scale AOIs stay responsive: coordinates are trimmed to 6 decimals (≈ 0.1 m), a simplified copy of each season's
footprints (tolerance ≈ half a screen pixel at the zoom that fits the AOI; a polygon too small to survive keeps its
bounding box) is drawn below the "detail" zoom, and Leaflet draws on one canvas when a season holds many polygons.
"""

from __future__ import annotations

import base64
import io
import json
import re
from importlib import resources

import geopandas as gpd
import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject

from geo.grid import GeoGrid

#: Coordinate decimals in the map data (1e-6° ≈ 0.1 m).
PRECISION = 6
#: Longest side (px) of a season's imagery in the map.
IMAGERY_PX = 1400
#: Above this many polygons in a season, Leaflet draws on a canvas instead of one SVG path per feature.
CANVAS_ABOVE = 1500

FOOTPRINT_PROPS = ("class_name", "area_m2", "site_id", "confidence_pct", "period")
SITE_PROPS = ("site_id", "n_ponds", "footprint_area_m2", "extent_area_m2", "period")


def _static(name: str) -> str:
    return resources.files("geo.results").joinpath("static", name).read_text(encoding="utf-8")


def _static_b64(name: str) -> str:
    return base64.b64encode(resources.files("geo.results").joinpath("static", name).read_bytes()).decode()


def pack_ring(ring, decimals: int) -> list[int]:
    """A ring as integers (units of 10^-decimals degrees), first vertex absolute then deltas: ``[x0, y0, dx1, dy1, …]``.

    Neighbouring vertices of 10 m pixels differ by ~100 units, so a vertex costs ~8 characters of JSON, not ~24.
    """
    q = np.round(np.asarray(ring, dtype=np.float64)[:, :2] * 10.0**decimals).astype(np.int64)
    return np.diff(q, axis=0, prepend=np.zeros((1, 2), np.int64)).ravel().tolist()


def pack_geometry(geom, decimals: int) -> dict:
    """``{"t": "Polygon"|"MultiPolygon", "c": rings | polygons of rings}`` with :func:`pack_ring` rings."""
    gj = shapely.geometry.mapping(geom)
    if gj["type"] == "Polygon":
        return {"t": "Polygon", "c": [pack_ring(r, decimals) for r in gj["coordinates"]]}
    if gj["type"] == "MultiPolygon":
        return {"t": "MultiPolygon", "c": [[pack_ring(r, decimals) for r in poly] for poly in gj["coordinates"]]}
    raise ValueError(f"web map geometries are polygons, got {gj['type']}")


def unpack_ring(packed: list[int], decimals: int) -> list[list[float]]:
    """Inverse of :func:`pack_ring` (what the page script does)."""
    q = np.cumsum(np.asarray(packed, dtype=np.int64).reshape(-1, 2), axis=0)
    return (q / 10.0**decimals).tolist()


def _clean(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else round(float(v), 2)
    return v if isinstance(v, (int, str)) or v is None else str(v)


def feature_collection(gdf: gpd.GeoDataFrame, props: tuple[str, ...], *, decimals: int | None = None,
                       index_only: bool = False) -> dict:
    """Features in EPSG:4326 with packed geometry (:func:`pack_geometry`, ``q`` = decimals) and only ``props``.

    ``index_only``: properties are just ``{"i": row}`` (the simplified copy points at the full one's properties).
    The page script unpacks a season into GeoJSON the first time it is shown.
    """
    q = PRECISION if decimals is None else decimals
    if not len(gdf):
        return {"q": q, "features": []}
    wgs = gdf.to_crs(4326)
    cols = [p for p in props if p in wgs.columns]
    values = {p: wgs[p].tolist() for p in cols}
    feats = []
    for i, geom in enumerate(wgs.geometry.values):
        if geom is None or geom.is_empty:
            continue
        feats.append({"g": pack_geometry(geom, q),
                      "properties": {"i": len(feats)} if index_only else {p: _clean(values[p][i]) for p in cols}})
    return {"q": q, "features": feats}


def simplified(gdf: gpd.GeoDataFrame, tolerance_m: float) -> gpd.GeoDataFrame:
    """``gdf`` simplified by ``tolerance_m`` (in its projected CRS); a polygon that collapses keeps its envelope."""
    if not len(gdf) or tolerance_m <= 0:
        return gdf
    geoms = shapely.simplify(gdf.geometry.values, tolerance_m, preserve_topology=True)
    bad = shapely.is_empty(geoms) | (shapely.area(geoms) <= 0)
    geoms = np.where(bad, shapely.envelope(gdf.geometry.values), geoms)
    return gdf.set_geometry(gpd.GeoSeries(geoms, crs=gdf.crs))


def fit_zoom(bounds_ll: tuple[float, float, float, float], px: int = 1000) -> int:
    """The Web Mercator zoom at which ``(west, south, east, north)`` fits in about ``px`` pixels."""
    w, s, e, n = bounds_ll
    span = max(e - w, np.degrees(np.log(np.tan(np.pi / 4 + np.radians(n) / 2))
                                 - np.log(np.tan(np.pi / 4 + np.radians(s) / 2))), 1e-6)
    return int(np.clip(np.floor(np.log2(360.0 * px / 256.0 / span)), 1, 18))


def stretch(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Display RGB (uint8 ``(y, x, 3)``) from reflectance ``(3, y, x)``, and the mask of pixels never seen."""
    img = np.nan_to_num(np.moveaxis(rgb, 0, -1), nan=0.0)
    unseen = (img <= 0).all(axis=-1)
    scale = float(np.percentile(img[~unseen], 99)) if (~unseen).any() else 1.0
    img = np.clip(img / max(1e-6, scale), 0, 1) ** 0.8
    return (img * 255).round().astype(np.uint8), unseen


def imagery_overlay(rgb: np.ndarray, grid: GeoGrid) -> dict:
    """A season's composite reprojected to Web Mercator as a WebP data URI with its lat/lon bounds.

    Leaflet stretches an image overlay linearly between its corners in Web Mercator, so the image is warped to
    EPSG:3857 first; pixels never seen clear are transparent.
    """
    img, unseen = stretch(rgb)
    return rgba_overlay(np.concatenate([np.moveaxis(img, -1, 0), np.where(unseen, 0, 255).astype(np.uint8)[None]]),
                        grid, "WEBP")


def unseen_overlay(unseen: np.ndarray, grid: GeoGrid) -> dict:
    """Pixels "not observed" (class raster nodata) as a translucent grey PNG overlay."""
    a = np.where(unseen, 1, 0).astype(np.uint8)
    rgba = np.stack([a * 150, a * 150, a * 150, a * 170]).astype(np.uint8)
    return rgba_overlay(rgba, grid, "PNG", resampling=Resampling.nearest)


def rgba_overlay(src: np.ndarray, grid: GeoGrid, fmt: str, *, resampling=Resampling.bilinear) -> dict:
    """A ``(4, y, x)`` uint8 RGBA raster on ``grid`` warped to Web Mercator: ``{"url": data URI, "bounds"}``."""
    from PIL import Image

    merc = CRS.from_epsg(3857)
    left, bottom, right, top = grid.bounds
    transform, w, h = calculate_default_transform(grid.crs, merc, grid.width, grid.height, left, bottom, right, top)
    step = max(1.0, max(w, h) / IMAGERY_PX)
    w, h = max(1, int(w / step)), max(1, int(h / step))
    transform = transform @ transform.scale(step)
    dst = np.zeros((4, h, w), np.uint8)
    reproject(src, dst, src_transform=grid.transform, src_crs=grid.crs, dst_transform=transform, dst_crs=merc,
              resampling=resampling)
    buf = io.BytesIO()
    opts = {"quality": 80, "method": 4} if fmt == "WEBP" else {"optimize": True}
    Image.fromarray(np.moveaxis(dst, 0, -1), "RGBA").save(buf, format=fmt, **opts)
    from pyproj import Transformer

    tr = Transformer.from_crs(merc, 4326, always_xy=True)
    x0, y0 = transform @ (0, h)
    x1, y1 = transform @ (w, 0)
    (lon0, lon1), (lat0, lat1) = tr.transform([x0, x1], [y0, y1])
    return {"url": f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode(),
            "bounds": [[lat0, lon0], [lat1, lon1]]}


def _context(bounds_ll: tuple[float, float, float, float], margin: float = 12.0) -> dict:
    """Natural Earth country outlines near the AOI (offline context instead of a tile server)."""
    fc = json.loads(_static("ne_countries_110m.geojson"))
    w, s, e, n = bounds_ll
    box = shapely.box(w - margin, s - margin, e + margin, n + margin)
    keep = [f for f in fc["features"] if shapely.geometry.shape(f["geometry"]).intersects(box)]
    return {"type": "FeatureCollection", "features": keep}


def map_data(seasons: list[tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame]], *, dates: dict[str, tuple[str, str]],
             imagery: dict[str, tuple[np.ndarray, GeoGrid]], attribution: str,
             unseen: dict[str, tuple[np.ndarray, GeoGrid]] | None = None, area: GeoGrid | None = None) -> dict:
    """Everything the page script draws. ``seasons``: ``(label, footprints, sites)`` in a projected CRS, in order.

    ``unseen``: per season, a boolean mask of pixels not observed (class raster nodata) on its grid.
    ``area``: the analysis grid, so the map opens on the AOI even when no season found anything.
    """
    ext = [g.to_crs(4326).total_bounds for _, fp, st in seasons for g in (fp, st) if len(g)]
    for rgb, grid in [*imagery.values(), *([(None, area)] if area is not None else [])]:
        ext.append(np.array(gpd.GeoSeries([shapely.box(*grid.bounds)], crs=grid.crs).to_crs(4326).total_bounds))
    if ext:
        arr = np.array(ext)
        bounds = (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max()))
    else:
        bounds = (-1.0, -1.0, 1.0, 1.0)
    z0 = fit_zoom(bounds)
    lat = np.radians((bounds[1] + bounds[3]) / 2)
    m_per_px = 156543.03 * np.cos(lat) / 2**z0  # at the zoom that fits the AOI
    data = {"seasons": [s for s, _, _ in seasons], "dates": {s: list(dates.get(s, ("", ""))) for s, _, _ in seasons},
            "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]], "detail_zoom": z0 + 2,
            "footprints": {}, "footprints_lo": {}, "sites": {}, "imagery": {}, "attribution": attribution,
            "canvas_above": CANVAS_ABOVE, "context": _context(bounds)}
    # the simplified copy: a quarter of a screen pixel of precision at the zoom that fits the AOI is plenty
    lo_decimals = int(np.clip(np.ceil(-np.log10(m_per_px * 0.25 / 111_000)), 3, PRECISION))
    for label, fp, st in seasons:
        data["footprints"][label] = feature_collection(fp, FOOTPRINT_PROPS)
        data["footprints_lo"][label] = feature_collection(simplified(fp, m_per_px * 0.5), FOOTPRINT_PROPS,
                                                          decimals=lo_decimals, index_only=True)
        data["sites"][label] = feature_collection(st, SITE_PROPS)
    for label, (rgb, grid) in imagery.items():
        data["imagery"][label] = imagery_overlay(rgb, grid)
    data["unseen"] = {label: unseen_overlay(mask, grid) for label, (mask, grid) in (unseen or {}).items()
                      if mask.any()}
    return data


def _inline_css_images(css: str) -> str:
    """Leaflet's CSS with its ``images/*.png`` as data URIs and the IE-only VML behaviour dropped."""
    def sub(m: re.Match) -> str:
        name = m.group(1)
        try:
            return f"url(data:image/png;base64,{_static_b64('leaflet/' + name)})"
        except FileNotFoundError:
            return "none"  # marker icons: minewatch draws no default markers

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", sub, css)
    return css.replace("behavior: url(#default#VML);", "")


def _script_safe(text: str) -> str:
    """Text safe inside ``<script>``: no ``</script`` can close it early; no source-map fetch hint."""
    text = re.sub(r"//# sourceMappingURL=\S+", "", text)
    return text.replace("</", "<\\/")


def map_html(data: dict) -> str:
    """The ``<section>`` holding ``#map``, its controls, Leaflet (inlined) and the data."""
    css = _inline_css_images(_static("leaflet/leaflet.css")) + _static("webmap.css")
    return (f"<style>{css}</style>"
            '<section id="mw-webmap"><div id="mw-controls"><label for="mw-season">Season</label> '
            f'<input type="range" id="mw-season" min="0" max="{max(0, len(data["seasons"]) - 1)}" step="1" '
            f'value="{max(0, len(data["seasons"]) - 1)}" aria-label="Season"> <output id="mw-season-label"></output>'
            '</div><div id="map" role="region" aria-label="Interactive map of footprints and sites"></div>'
            '<p class="mw-note">Drag the slider (or use ←/→) to step through the dry seasons; click a polygon for '
            "its class, area, site, confidence and season. Works offline; no tiles are fetched.</p></section>"
            f"<script>{_script_safe(_static('leaflet/leaflet.js'))}</script>"
            f'<script id="mw-data" type="application/json">{_script_safe(json.dumps(data, separators=(",", ":")))}'
            f"</script><script>{_script_safe(_static('webmap.js'))}</script>")

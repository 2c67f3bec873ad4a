"""The report's maps from one set of inputs: the interactive web map and the briefing image.

Called from :func:`geo.results.outputs.write_vectors_and_report` (so ``minewatch change`` remakes them too).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np

from geo.grid import GeoGrid
from geo.results.layers import period_dates
from geo.results.quicklook import rgb_from_tasks

log = logging.getLogger(__name__)


def season_imagery(out: Path, labels: list[str], grid: GeoGrid | None,
                   last: tuple[np.ndarray, GeoGrid] | None) -> dict[str, tuple[np.ndarray, GeoGrid]]:
    """Each season's true-colour quicklook from its task composites (``last`` for the last season if given)."""
    imagery: dict[str, tuple[np.ndarray, GeoGrid]] = {}
    for s in labels:
        q = rgb_from_tasks(out, s, grid) if grid is not None else None
        if q is not None:
            imagery[s] = q
    if last is not None and labels:
        imagery[labels[-1]] = last
    return imagery


def unseen_masks(out: Path, labels: list[str], max_px: int = 1400) -> dict[str, tuple[np.ndarray, GeoGrid]]:
    """Per season, where the class raster says "not observed" (nodata 255), decimated to at most ``max_px``."""
    import rasterio
    from affine import Affine

    from geo.stages.vectorize import NOT_OBSERVED

    masks = {}
    for s in labels:
        path = out / f"classmap_{s}.tif"
        if not path.exists():
            continue
        with rasterio.open(path) as src:
            step = max(1, int(np.ceil(max(src.width, src.height) / max_px)))
            h, w = -(-src.height // step), -(-src.width // step)
            a = src.read(1, out_shape=(h, w), resampling=rasterio.enums.Resampling.nearest)
            t = src.transform
            grid = GeoGrid(src.crs, Affine(t.a * src.width / w, t.b, t.c, t.d, t.e * src.height / h, t.f), w, h)
        masks[s] = (a == NOT_OBSERVED, grid)
    return masks


def copernicus_credit(labels: list[str]) -> str:
    """"Contains modified Copernicus Sentinel data YYYY–YYYY" over the years the seasons span."""
    if not labels:
        return "Contains modified Copernicus Sentinel data"
    y0 = min(period_dates(s)[0].year for s in labels)
    y1 = max(period_dates(s)[1].year for s in labels)
    return f"Contains modified Copernicus Sentinel data {y0}" + (f"–{y1}" if y1 != y0 else "")


def scene_dates(labels: list[str], coverage: dict[str, dict]) -> dict[str, str]:
    """``first – last`` scene date of each season (from ``coverage.json``), else the season's own dates."""
    out = {}
    for s in labels:
        d = coverage.get(s, {}).get("scene_dates")
        if isinstance(d, (list, tuple)) and len(d) == 2 and d[0]:
            out[s] = f"{d[0]} – {d[1]}"
        else:
            a, b = period_dates(s)
            out[s] = f"{a.isoformat()} – {b.isoformat()} (season)"
    return out


def report_maps(out: Path, aoi_name: str, seasons: list[tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame]],
                coverage: dict[str, dict], grid: GeoGrid | None,
                last_image: tuple[np.ndarray, GeoGrid] | None) -> tuple[str, dict[str, Path]]:
    """Write ``briefing_map.png``; return the web map's HTML fragment and ``{caption: image}`` for the report."""
    from geo.results.cartography import briefing_map
    from geo.results.webmap import map_data, map_html

    labels = [s for s, _, _ in seasons]
    if not seasons or grid is None:
        return "", {}
    imagery = season_imagery(out, labels, grid, last_image)
    credit = copernicus_credit(labels)
    dates = {s: tuple(d.isoformat() for d in period_dates(s)) for s in labels}
    attribution = (f"{credit}, processed by minewatch · Country outlines: Natural Earth · "
                   "Map: Leaflet (BSD-2-Clause)")
    unseen = unseen_masks(out, labels)
    html = map_html(map_data(seasons, dates=dates, imagery=imagery, attribution=attribution, unseen=unseen,
                             area=grid))
    png = briefing_map(out / "briefing_map.png", title=f"{aoi_name}: mining footprints by dry season", grid=grid,
                       seasons=seasons, imagery=imagery, scene_dates=scene_dates(labels, coverage), credit=credit,
                       unseen=unseen)
    return html, {"Briefing map (seasons side by side)": png}

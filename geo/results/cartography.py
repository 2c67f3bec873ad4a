"""A map image a briefing can use: the seasons side by side, with the furniture a reader needs to trust a map.

Each panel is one season in the AOI's UTM zone (true areas and distances) over its composite when the run kept one:
footprints (ponds filled, cleared land outlined), site extents with their ids, a latitude/longitude graticule, a
scale bar, a north arrow pointing to *true* north (rotated by the UTM grid convergence), the scene dates; the figure
has a locator inset (Natural Earth country outlines, public domain), a legend and the Copernicus attribution.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from importlib import resources
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib.patches import FancyArrow, Patch, Rectangle  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from pyproj import Transformer  # noqa: E402

from geo.fsutil import atomic_path  # noqa: E402
from geo.grid import GeoGrid  # noqa: E402

#: At most this many season panels (first, last and evenly spaced between).
MAX_PANELS = 6
POND, CLEARED, SITE = "#00e5ff", "#ff8c00", "#ff00ff"


def pick_panels(labels: list[str], k: int = MAX_PANELS) -> list[str]:
    """Up to ``k`` labels: the first, the last and evenly spaced ones between, in order."""
    if len(labels) <= k:
        return list(labels)
    idx = sorted({int(round(i)) for i in np.linspace(0, len(labels) - 1, k)})
    return [labels[i] for i in idx]


def nice_step(span: float, target: int = 3) -> float:
    """A round step (1, 2, 2.5 or 5 × 10ⁿ) giving about ``target`` intervals over ``span``."""
    raw = max(span, 1e-12) / target
    mag = 10 ** math.floor(math.log10(raw))
    return min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)


def _fmt_deg(v: float, pos: str, neg: str, step: float) -> str:
    dec = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
    return f"{abs(v):.{dec}f}°{pos if v >= 0 else neg}"


def graticule(ax, crs, bounds: tuple[float, float, float, float], *, labels: bool = True) -> float:
    """Draw lines of constant latitude and longitude (in UTM, so they curve as they should); returns the step (°)."""
    left, bottom, right, top = bounds
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    xs, ys = np.meshgrid(np.linspace(left, right, 9), np.linspace(bottom, top, 9))
    lon, lat = to_ll.transform(xs.ravel(), ys.ravel())
    step = nice_step(max(np.ptp(lon), np.ptp(lat)))
    kw = dict(color="white", lw=0.5, alpha=0.7, ls=(0, (4, 3)), zorder=4)
    for v in np.arange(math.ceil(min(lon) / step) * step, max(lon) + 1e-9, step):
        x, y = to_xy.transform(np.full(50, v), np.linspace(min(lat), max(lat), 50))
        ax.plot(x, y, **kw)
        if labels:
            xb = to_xy.transform(v, min(lat))[0]
            if left < xb < right:
                ax.annotate(_fmt_deg(v, "E", "W", step), (xb, bottom), xytext=(0, -2), textcoords="offset points",
                            ha="center", va="top", fontsize=6, annotation_clip=False)
    for v in np.arange(math.ceil(min(lat) / step) * step, max(lat) + 1e-9, step):
        x, y = to_xy.transform(np.linspace(min(lon), max(lon), 50), np.full(50, v))
        ax.plot(x, y, **kw)
        if labels:
            yb = to_xy.transform(min(lon), v)[1]
            if bottom < yb < top:
                ax.annotate(_fmt_deg(v, "N", "S", step), (left, yb), xytext=(-2, 0), textcoords="offset points",
                            ha="right", va="center", fontsize=6, rotation=90, annotation_clip=False)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    return step


def scale_bar(ax, bounds: tuple[float, float, float, float]) -> float:
    """Two-segment black/white scale bar (metres of the UTM grid) at the lower right; returns its length (m)."""
    left, bottom, right, top = bounds
    length = nice_step((right - left) / 4, target=1)
    h = (top - bottom) * 0.012
    x0, y0 = right - (right - left) * 0.05 - length, bottom + (top - bottom) * 0.05
    ax.add_patch(Rectangle((x0 - length * 0.06, y0 - h * 1.5), length * 1.12, h * 6.2, fc="white", alpha=0.75,
                           ec="none", zorder=6))
    for i in range(2):
        ax.add_patch(Rectangle((x0 + i * length / 2, y0), length / 2, h, fc="black" if i == 0 else "white",
                               ec="black", lw=0.6, zorder=7))
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + h * 1.6, text, ha="center", va="bottom", fontsize=7, zorder=7)
    return length


def convergence_deg(crs, x: float, y: float) -> float:
    """Angle (degrees, counter-clockwise from grid north) of true north at ``(x, y)`` in a projected CRS."""
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    lon, lat = to_ll.transform(x, y)
    x2, y2 = to_xy.transform(lon, lat + 0.01)
    return math.degrees(math.atan2(-(x2 - x), y2 - y))


def north_arrow(ax, crs, bounds: tuple[float, float, float, float]) -> float:
    """An arrow to true north in the upper right (axes fraction); returns the convergence it applied (°)."""
    left, bottom, right, top = bounds
    angle = convergence_deg(crs, (left + right) / 2, (bottom + top) / 2)
    a = math.radians(angle)
    cx, cy, ln = 0.92, 0.8, 0.1
    dx, dy = -math.sin(a) * ln, math.cos(a) * ln
    ax.add_patch(FancyArrow(cx - dx / 2, cy - dy / 2, dx, dy, width=0.012, head_width=0.045, head_length=0.04,
                            length_includes_head=True, transform=ax.transAxes, fc="black", ec="white", lw=0.6,
                            zorder=8))
    ax.text(cx + dx * 0.75, cy + dy * 0.75, "N", transform=ax.transAxes, ha="center", va="bottom", fontsize=8,
            fontweight="bold", zorder=8, bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5))
    return angle


def locator(fig, rect, crs, bounds) -> None:
    """Inset: Natural Earth countries around the AOI with the AOI marked (lon/lat)."""
    ax = fig.add_axes(rect)
    left, bottom, right, top = bounds
    aoi = gpd.GeoSeries([shapely.box(left, bottom, right, top)], crs=crs).to_crs(4326)
    w, s, e, n = aoi.total_bounds
    cx, cy = (w + e) / 2, (s + n) / 2
    span = 12.0
    fc = json.loads(resources.files("geo.results").joinpath("static", "ne_countries_110m.geojson").read_text("utf-8"))
    world = gpd.GeoDataFrame.from_features(fc["features"], crs=4326)
    world.plot(ax=ax, color="#eeeae0", edgecolor="#888", linewidth=0.4)
    aoi.boundary.plot(ax=ax, color="red", linewidth=1.2)
    ax.plot([cx], [cy], "o", ms=6, mfc="none", mec="red", mew=1.2)
    ax.set_xlim(cx - span, cx + span)
    ax.set_ylim(cy - span * 0.8, cy + span * 0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_facecolor("#cfe3ee")
    ax.set_title("Location", fontsize=7, pad=2)


def season_panel(ax, label: str, fp: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, grid: GeoGrid,
                 image: tuple[np.ndarray, GeoGrid] | None, dates: str,
                 unseen: tuple[np.ndarray, GeoGrid] | None = None) -> None:
    """One season: composite (or a plain background), not-observed areas, footprints, sites and labels, furniture."""
    from geo.results.webmap import stretch

    bounds = grid.bounds
    if image is not None:
        img, no_pixel = stretch(image[0])
        rgba = np.dstack([img, np.where(no_pixel, 0, 255).astype(np.uint8)])
        l, b, r, t = image[1].bounds
        ax.imshow(rgba, extent=(l, r, b, t), zorder=1, interpolation="nearest")
        ax.set_facecolor("#d9d9d9")
    else:
        ax.set_facecolor("#3a4a3a")
        ax.text(0.02, 0.02, "no composite kept for this season", transform=ax.transAxes, fontsize=6.5,
                color="white", ha="left", va="bottom", zorder=6)
    if unseen is not None and unseen[0].any():
        m = unseen[0]
        rgba = np.zeros((*m.shape, 4), np.uint8)
        rgba[m] = (217, 217, 217, 255)
        l, b, r, t = unseen[1].bounds
        ax.imshow(rgba, extent=(l, r, b, t), zorder=2, interpolation="nearest")
    fp = fp.to_crs(grid.crs) if len(fp) else fp
    if len(fp):
        fp[fp["class"] == 1].boundary.plot(ax=ax, color=CLEARED, linewidth=0.7, zorder=3)
        fp[fp["class"] == 2].plot(ax=ax, color=POND, edgecolor="#003c50", linewidth=0.3, zorder=3)
    if len(sites):
        st = sites.to_crs(grid.crs)
        st.boundary.plot(ax=ax, color=SITE, linewidth=0.9, linestyle="--", zorder=3)
        if len(st) <= 40:
            for sid, geom in zip(st["site_id"], st.geometry):
                x1, y1 = geom.bounds[2:]  # label beside the site's upper-right corner, not over its ponds
                ax.annotate(f"#{sid}", (x1, y1), xytext=(1, 1), textcoords="offset points", fontsize=5.5,
                            color="white", ha="left", va="bottom", zorder=5, annotation_clip=True,
                            bbox=dict(fc=SITE, ec="none", alpha=0.6, pad=0.6))
    graticule(ax, grid.crs, bounds)
    scale_bar(ax, bounds)
    north_arrow(ax, grid.crs, bounds)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    n_ponds = int((fp["class"] == 2).sum()) if len(fp) else 0
    ax.set_title(f"{label}  ·  {len(sites)} site(s), {n_ponds} pond(s)\nscenes {dates}", fontsize=8)


def briefing_map(path: str | Path, *, title: str, grid: GeoGrid,
                 seasons: list[tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame]],
                 imagery: dict[str, tuple[np.ndarray, GeoGrid]], scene_dates: dict[str, str], credit: str,
                 unseen: dict[str, tuple[np.ndarray, GeoGrid]] | None = None) -> Path:
    """Small multiples of the seasons (at most :data:`MAX_PANELS`) with locator, legend and attribution."""
    path = Path(path)
    by = {s: (fp, st) for s, fp, st in seasons}
    panels = pick_panels([s for s, _, _ in seasons])
    n = max(1, len(panels))
    ncols = 2 if n == 4 else min(3, n)
    nrows = math.ceil(n / ncols)
    aspect = grid.height / max(grid.width, 1)
    pw = 4.2
    fig = plt.figure(figsize=(pw * ncols + 1.2, pw * aspect * nrows + 1.9), dpi=130)
    top_frac = 1 - 0.75 / fig.get_figheight()
    bottom_frac = 0.95 / fig.get_figheight()
    gs = fig.add_gridspec(nrows, ncols, left=0.05, right=0.8, top=top_frac, bottom=bottom_frac, wspace=0.12,
                          hspace=0.3)
    for k, s in enumerate(panels):
        ax = fig.add_subplot(gs[k // ncols, k % ncols])
        fp, st = by[s]
        season_panel(ax, s, fp, st, grid, imagery.get(s), scene_dates.get(s, "–"), (unseen or {}).get(s))
    fig.suptitle(title, fontsize=11, y=1 - 0.25 / fig.get_figheight())
    locator(fig, [0.82, top_frac - 0.2, 0.16, 0.18], grid.crs, grid.bounds)
    handles = [Patch(facecolor=POND, edgecolor="#003c50", label="leaching pond"),
               Patch(facecolor="none", edgecolor=CLEARED, label="cleared land"),
               Line2D([], [], color=SITE, ls="--", label="mining site extent"),
               Line2D([], [], color="grey", ls=(0, (4, 3)), label="lat/lon graticule"),
               Patch(facecolor="#d9d9d9", label="not observed clear")]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.81, top_frac - 0.38), fontsize=7,
               frameon=False)
    from pyproj import CRS

    crs = CRS.from_user_input(grid.crs.to_wkt())
    foot = (f"{credit}  ·  Projection: {crs.name} ({crs.to_authority() and ':'.join(crs.to_authority())})  ·  "
            f"North arrow: true north  ·  Made {dt.date.today().isoformat()} with minewatch")
    fig.text(0.01, 0.012, foot, fontsize=6.5, ha="left", va="bottom", color="#333", wrap=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path

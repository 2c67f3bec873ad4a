"""95 % intervals for map-derived areas, site counts and growth (the method is documented in docs/INTERVALS.md).

An area counted from a class map is wrong in three ways, and each gives one variance term:

1. **pixel noise** — a pixel with confidence ``c`` in its class is wrong with probability ``1 − c``; summed as a
   Poisson-binomial over the class's pixels and a one-pixel ring around them: Var = Σ c(1 − c) a²;
2. **boundary placement** — most area error of a 10 m map sits on the polygon edges and is correlated along them
   (a shifted edge is wrong over its whole length), so it is modelled as a systematic term
   σ = ``BOUNDARY_FRACTION`` × (edge pixels) × a, with the fraction measured on simulated series (see the doc);
3. **unobserved pixels** — pixels with no clear observation (confidence 0 inside the map) may hide footprint;
   the upper bound grows by their count × the class's share among observed pixels × a.

Site counts: each site exists with the mean confidence of its member polygons (Poisson-binomial variance),
sites that merge or split when the link distance moves by ``LINK_SLACK_PX`` pixels widen the bounds, and sites
that unobserved pixels may hide (at the density seen elsewhere in the AOI) raise the upper bound.
Growth: the log-ratio of two periods with independent errors (conservative when errors are correlated).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from geo.results.estimate import Z95

#: Standard deviation of the area error per edge pixel, as a fraction of a pixel (see docs/INTERVALS.md): for
#: footprint and cleared land (large patches), and for leaching ponds (small objects, mostly edge; a one-pixel
#: ring on a 5 × 5 px pond is a large share of it).
BOUNDARY_FRACTION = 0.18
POND_BOUNDARY_FRACTION = 0.15
#: Link-distance change (pixels) within which two sites are counted as possibly one (or one as possibly two).
LINK_SLACK_PX = 2.0

_CROSS = ndi.generate_binary_structure(2, 1)


def area_interval(classes: np.ndarray, confidence: np.ndarray | None, values: tuple[int, ...], pixel_area: float,
                  *, region: np.ndarray | None = None, boundary_fraction: float | None = None
                  ) -> tuple[float, float, float]:
    """``(area, low, high)`` in m² of the pixels whose class is in ``values``.

    Args:
        classes: class raster (0 background, 1 cleared land, 2 leaching pond).
        confidence: 0–1 confidence in the assigned class (0 = no clear observation), or None (then pixel noise
            and unobserved terms are left out).
        values: the classes counted (``(1, 2)`` = footprint).
        pixel_area: m² per pixel.
        region: optional bool raster, True = inside the AOI.
        boundary_fraction: the boundary term's fraction; default :data:`POND_BOUNDARY_FRACTION` when ``values`` is
            ponds only, else :data:`BOUNDARY_FRACTION`.
    """
    if boundary_fraction is None:
        boundary_fraction = POND_BOUNDARY_FRACTION if tuple(values) == (2,) else BOUNDARY_FRACTION
    inside = np.ones(classes.shape, bool) if region is None else region.astype(bool)
    mask = np.isin(classes, values) & inside
    n = int(mask.sum())
    area = n * pixel_area
    edge = int((mask & ~ndi.binary_erosion(mask, _CROSS, border_value=1)).sum())
    var = (boundary_fraction * edge * pixel_area) ** 2
    extra_high = 0.0
    if confidence is not None:
        c = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
        ring = ndi.binary_dilation(mask, _CROSS) & inside
        observed = (c > 0) & inside
        var += float((c * (1 - c))[ring & observed].sum()) * pixel_area**2
        n_obs = int(observed.sum())
        unobserved = int((inside & ~observed).sum())
        if n_obs and unobserved:
            share = int((mask & observed).sum()) / n_obs
            extra_high = unobserved * share * pixel_area
    half = Z95 * math.sqrt(var)
    return float(area), float(max(0.0, area - half)), float(area + half + extra_high)


def unseen_share(confidence: np.ndarray | None, region: np.ndarray | None = None) -> float:
    """Share of the AOI's pixels with no clear observation (confidence 0); 0.0 when confidence is not known."""
    if confidence is None:
        return 0.0
    inside = np.ones(confidence.shape, bool) if region is None else region.astype(bool)
    n = int(inside.sum())
    return float(((np.asarray(confidence) <= 0) & inside).sum()) / n if n else 0.0


def count_interval(n: int, existence: np.ndarray, n_merged: int, n_split: int, *,
                   unseen_share: float = 0.0) -> tuple[int, int]:
    """``(low, high)`` of a site count.

    Args:
        n: the counted sites.
        existence: probability that each counted site is real (e.g. its mean confidence).
        n_merged: the count when the link distance is ``LINK_SLACK_PX`` longer (sites that may be one).
        n_split: the count when it is ``LINK_SLACK_PX`` shorter (sites that may be two).
        unseen_share: share of the AOI with no clear observation. Sites hidden there at the density seen
            elsewhere, ``n · u / (1 − u)``, are added to the upper bound (as the area interval's unobserved term);
            all of the AOI unseen leaves the upper bound unbounded (inf).
    """
    q = np.clip(np.asarray(existence, dtype=np.float64), 0.0, 1.0)
    sd = math.sqrt(float((q * (1 - q)).sum()))
    down = math.hypot(Z95 * sd, max(0, n - n_merged))
    up = math.hypot(Z95 * sd, max(0, n_split - n))
    u = min(max(float(unseen_share), 0.0), 1.0)
    if n and u >= 1.0:
        return max(0, math.floor(n - down)), math.inf
    hidden = n * u / (1.0 - u) if n else 0.0
    return max(0, math.floor(n - down)), math.ceil(n + up + hidden)


def growth_interval(v0: float, lo0: float, hi0: float, v1: float, lo1: float, hi1: float) -> tuple[float, float]:
    """95 % interval (percent) of the growth ``v1 / v0 − 1`` given each value's 95 % interval.

    Works on the log ratio with independent errors: the standard error of each log value is its interval's
    width / (2 · 1.96 · value). NaN when a value is 0.
    """
    if v0 <= 0 or v1 <= 0:
        return float("nan"), float("nan")
    s0 = (hi0 - lo0) / (2 * Z95 * v0)
    s1 = (hi1 - lo1) / (2 * Z95 * v1)
    r = math.log(v1 / v0)
    h = Z95 * math.hypot(s0, s1)
    return float((math.exp(r - h) - 1) * 100), float((math.exp(r + h) - 1) * 100)

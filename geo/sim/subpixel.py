"""Leaching ponds smaller than a Sentinel-2 pixel, painted on a fine grid and averaged to 10 m (pure).

Real collection pools in the Chipwi–Pangwa belt are about the size of one 10 m pixel. Over the 1,430
hand-placed pool points of the Ballinger / Earth Genome dev file (``../shared/data/kachin-rare-earth-labels-
ballinger/leaching_pools_points_dev.csv``, UTM 47N), the nearest-neighbour spacing has percentiles
5/25/50/75/90 = 10.0 / 12.6 / 14.9 / 18.2 / 26.0 m, single linkage at 30 m gives 348 clusters (median 2
pools, 90th percentile 11, largest 22; 34 % isolated) and 894 of the points are square, 536 circular. A pool
therefore rarely fills a whole 10 m pixel: what the sensor sees is a mixed pixel of water and pad, and a
pond pixel (at least half of it pond, the truth rule of the issue's benchmark) is darker in NIR rather
than dark in the 20 m SWIR.

:func:`subpixel_ponds` takes a chip's class layout on the 10 m grid, repeats it ``k`` times finer, and
replaces pond blobs by clusters of rotated square or round pools on a jittered lattice whose spacing is
drawn from the measured distribution above (pool side 0.55–0.9 of the spacing, so there is always a rim of
pad between pools). The caller renders the fine layout and averages it back with :func:`block_mean`;
:func:`coarse_labels` gives the 10 m truth: pond where at least half the pixel is pond, cleared land where
at least half is footprint.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: Lognormal of the pool spacing (m): median 14.9 m, sigma from the measured quartiles 12.6 / 18.2 m.
SPACING_MEDIAN_M, SPACING_SIGMA = 14.9, math.log(18.2 / 12.6) / 1.349
SPACING_RANGE_M = (10.0, 30.0)
#: Pool side as a share of the spacing (the rest is the rim between pools).
SIDE_SHARE = (0.55, 0.9)
#: Share of round pools (536 of 1,430 points).
ROUND_SHARE = 536 / 1430


def upsample(a: np.ndarray, k: int) -> np.ndarray:
    """Each pixel repeated ``k``×``k`` times (last two axes)."""
    return np.repeat(np.repeat(a, k, axis=-2), k, axis=-1)


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean of each ``k``×``k`` block (last two axes), the inverse of :func:`upsample` for area averages."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def coarse_labels(fine: np.ndarray, k: int) -> np.ndarray:
    """10 m truth from the fine labels: 2 where at least half the pixel is pond, else 1 where at least half
    is footprint (cleared land or pond), else 0."""
    pond = block_mean((fine == 2).astype(np.float32), k)
    foot = block_mean((fine > 0).astype(np.float32), k)
    return np.where(pond >= 0.5, 2, np.where(foot >= 0.5, 1, 0)).astype(np.uint8)


def _pool(rng: np.random.Generator, cy: float, cx: float, side: float, angle: float,
          shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray] | None:
    """Mask (within its bounding box) of one square or round pool centred at fine pixel coordinates."""
    half = side / 2 * 1.5 + 1
    r0, r1 = max(int(cy - half), 0), min(int(math.ceil(cy + half)) + 1, shape[0])
    c0, c1 = max(int(cx - half), 0), min(int(math.ceil(cx + half)) + 1, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32) + 0.5
    dy, dx = yy - cy, xx - cx
    if rng.random() < ROUND_SHARE:
        m = dy * dy + dx * dx <= (side / 2) ** 2
    else:
        a = angle + rng.normal(0, 0.1)
        u, v = dx * math.cos(a) + dy * math.sin(a), -dx * math.sin(a) + dy * math.cos(a)
        m = (np.abs(u) <= side / 2) & (np.abs(v) <= side / 2)
    return slice(r0, r1), slice(c0, c1), m


def subpixel_ponds(rng: np.random.Generator, lc: np.ndarray, lc2: np.ndarray, mix: np.ndarray, labels: np.ndarray,
                   *, k: int, pad_lc: int, pixel_m: float = 10.0, share: float = 0.85,
                   drop: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The layout ``k`` times finer, with each pond blob (label 2, 8-connected) turned, with probability
    ``share``, into a cluster of real-size pools of the blob's colour class on ``pad_lc`` ground.

    Pools sit on a lattice of random orientation and offset whose spacing is drawn per blob (see the module
    docstring); each lattice node inside the blob holds a pool unless dropped (probability ``drop``), nodes
    are jittered by up to 15 % of the spacing, and pools are clipped to the site's footprint. A blob that
    would get no pool keeps one at its centre. Returns fine ``lc, lc2, mix, labels``.
    """
    lc_f, lc2_f, mix_f, lab_f = (upsample(a, k) for a in (lc, lc2, mix, labels))
    blobs, n = ndimage.label(labels == 2, np.ones((3, 3), bool))
    if n == 0:
        return lc_f, lc2_f, mix_f, lab_f
    blobs_f = upsample(blobs, k)
    foot_f = lab_f > 0
    fine_m = pixel_m / k
    for b, sl in enumerate(ndimage.find_objects(blobs), start=1):
        if rng.random() >= share:
            continue
        region = blobs_f == b
        colour = int(np.bincount(lc[sl][blobs[sl] == b]).argmax())
        lc_f[region], mix_f[region], lab_f[region] = pad_lc, 0.0, 1
        spacing = float(np.clip(SPACING_MEDIAN_M * math.exp(SPACING_SIGMA * rng.standard_normal()),
                                *SPACING_RANGE_M)) / fine_m
        side = spacing * rng.uniform(*SIDE_SHARE)
        angle = rng.uniform(0, math.pi)
        rows, cols = np.nonzero(region)
        cy0, cx0 = rows.mean() + 0.5, cols.mean() + 0.5
        reach = math.hypot(rows.max() - rows.min(), cols.max() - cols.min()) / 2 + spacing
        steps = np.arange(-math.ceil(reach / spacing), math.ceil(reach / spacing) + 1)
        off = rng.uniform(-0.5, 0.5, 2) * spacing
        centres = []
        for i in steps:
            for j in steps:
                u, v = i * spacing + off[0], j * spacing + off[1]
                y = cy0 + u * math.cos(angle) - v * math.sin(angle) + rng.uniform(-0.15, 0.15) * spacing
                x = cx0 + u * math.sin(angle) + v * math.cos(angle) + rng.uniform(-0.15, 0.15) * spacing
                iy, ix = int(y), int(x)
                if 0 <= iy < region.shape[0] and 0 <= ix < region.shape[1] and region[iy, ix]:
                    centres.append((y, x))
        kept = [c for c in centres if rng.random() >= drop] or [(cy0, cx0)]
        for y, x in kept:
            got = _pool(rng, y, x, side, angle, region.shape)
            if got is None:
                continue
            rs, cs, m = got
            m = m & foot_f[rs, cs]
            lc_f[rs, cs][m], mix_f[rs, cs][m], lab_f[rs, cs][m] = colour, 0.0, 2
    return lc_f, lc2_f, mix_f, lab_f

"""Terrain, noise fields, shapes and the real pond-cluster geometry for generator B."""
from __future__ import annotations

import csv
import functools
import json
import logging
import os
from pathlib import Path

import numpy as np
from scipy import ndimage, spatial

log = logging.getLogger(__name__)

POOLS_FILE = "kachin-rare-earth-labels-ballinger/leaching_pools_points_dev.csv"
HOLDOUT_FILE = "kachin-rare-earth-labels-ballinger/holdout_region_DO_NOT_TUNE_HERE.geojson"
LINK_M = 45.0  # pools closer than this (m) belong to one cluster (single linkage)


def fractal(rng: np.random.Generator, n: int, beta: float = 3.0, kmin: float = 1.0) -> np.ndarray:
    """Zero-mean unit-std isotropic power-law noise (power ~ k^-beta) on an n x n grid."""
    kx = np.fft.fftfreq(n) * n
    k = np.hypot(kx[:, None], kx[None, :])
    k[0, 0] = 1.0
    amp = np.where(k >= kmin, k ** (-beta / 2), 0.0)
    ph = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    f = np.fft.ifft2(amp * ph).real
    return ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)


def upsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling by an integer factor, pixel-centre aligned."""
    n = a.shape[0] * factor
    c = (np.arange(n) + 0.5) / factor - 0.5
    c = np.clip(c, 0, a.shape[0] - 1)
    i0 = np.floor(c).astype(np.int32)
    i1 = np.minimum(i0 + 1, a.shape[0] - 1)
    f = (c - i0).astype(np.float32)
    rows = a[i0] * (1 - f)[:, None] + a[i1] * f[:, None]
    return (rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]).astype(np.float32)


def terrain(rng: np.random.Generator, n: int, px_m: float, relief_m: float) -> np.ndarray:
    """Elevation (m) on an n x n grid: ridge-and-valley fractal relief of ~relief_m, 1500-2500 m a.s.l."""
    base = fractal(rng, n, beta=3.6, kmin=1.0)
    ridged = 1.0 - np.abs(fractal(rng, n, beta=3.2, kmin=2.0))
    z = 0.7 * base + 0.5 * (ridged - ridged.mean())
    z = (z - z.min()) / (np.ptp(z) + 1e-9)
    return (rng.uniform(1500, 1900) + relief_m * z).astype(np.float32)


def illumination(z: np.ndarray, px_m: float, sun_zen: float, sun_az: float, f_dir: float) -> np.ndarray:
    """Relative illumination factor on a DEM: direct (cos i / cos sz, cast shadows) + diffuse (sky view)."""
    gy, gx = np.gradient(z, px_m)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)  # 0 = facing north (row index increases southward)
    zs, az = np.radians(sun_zen), np.radians(sun_az)
    cos_i = np.cos(zs) * np.cos(slope) + np.sin(zs) * np.sin(slope) * np.cos(az - aspect)
    # cast shadows: march toward the sun, compare terrain with the sun ray height
    lit = np.ones_like(z, dtype=bool)
    dx, dy = np.sin(az), -np.cos(az)  # towards the sun in (col, row)
    tan_e = np.tan(np.pi / 2 - zs)
    for step in (2, 4, 7, 11, 16, 24, 35, 50, 70):
        sh = ndimage.shift(z, (-dy * step, -dx * step), order=0, mode="nearest")
        lit &= sh < z + step * px_m * tan_e
    direct = np.clip(cos_i, 0, None) * lit / np.cos(zs)
    sky = (1 + np.cos(slope)) / 2
    return (f_dir * direct + (1 - f_dir) * sky).astype(np.float32)


def blob(rng: np.random.Generator, h: int, w: int, rough: float = 0.35, beta: float = 2.6) -> np.ndarray:
    """A 'distance-like' field on an h x w window: low in the middle, irregular rim; threshold it for shapes."""
    yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    n = max(h, w)
    nz = fractal(rng, int(2 ** np.ceil(np.log2(max(n, 8)))), beta=beta, kmin=2.0)[:h, :w]
    return (np.hypot(yy, xx) + rough * nz).astype(np.float32)


def polyline(rng: np.random.Generator, p0, heading: float, n_seg: int, seg: float, wiggle: float) -> np.ndarray:
    pts = [np.asarray(p0, float)]
    for _ in range(n_seg):
        heading += rng.normal(0, wiggle)
        pts.append(pts[-1] + seg * np.array([np.sin(heading), np.cos(heading)]))
    return np.array(pts)


def draw_line(mask: np.ndarray, pts: np.ndarray, width: float) -> None:
    """Rasterise a thick polyline (pts in (row, col) pixel units) into mask in place."""
    h, w = mask.shape
    r = max(width / 2, 0.5)
    for a, b in zip(pts[:-1], pts[1:]):
        L = max(int(np.hypot(*(b - a)) / max(r * 0.7, 0.5)) + 1, 2)
        t = np.linspace(0, 1, L)[:, None]
        for p in a + t * (b - a):
            r0, r1 = int(max(p[0] - r - 1, 0)), int(min(p[0] + r + 2, h))
            c0, c1 = int(max(p[1] - r - 1, 0)), int(min(p[1] + r + 2, w))
            if r0 >= r1 or c0 >= c1:
                continue
            yy, xx = np.mgrid[r0:r1, c0:c1]
            mask[r0:r1, c0:c1] |= (yy + 0.5 - p[0]) ** 2 + (xx + 0.5 - p[1]) ** 2 <= r * r


# ---------------------------------------------------------------- real pond clusters
def shared_data_dir() -> Path:
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def _excluded(lon: float, lat: float, polys) -> bool:
    for (x0, y0, x1, y1) in polys:
        if x0 <= lon <= x1 and y0 <= lat <= y1:
            return True
    return False


@functools.lru_cache(maxsize=1)
def pond_clusters() -> tuple:
    """Real pool clusters as a tuple of (offsets_m (k, 2) [east, north] about the centroid, is_square (k,)).

    Points inside any polygon of the holdout GeoJSON (holdout box and gap band) are dropped. Returns ()
    if the file is absent (callers then fall back to random layouts).
    """
    d = shared_data_dir()
    f, g = d / POOLS_FILE, d / HOLDOUT_FILE
    if not f.exists():
        log.warning("gen_b: %s not found; pond clusters will use a RANDOM layout", f)
        return ()
    polys = [(-180, 25.72, 180, 90)]  # conservative default if the GeoJSON is missing
    if g.exists():
        polys = []
        for feat in json.loads(g.read_text())["features"]:
            ring = np.array(feat["geometry"]["coordinates"][0])
            polys.append((ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max()))
    en, sq = [], []
    with open(f, newline="") as fh:
        for row in csv.DictReader(fh):
            lon, lat = float(row["x"]), float(row["y"])
            if _excluded(lon, lat, polys):
                continue
            e, n = row["geom"].split("(")[1].rstrip(")").split()
            en.append((float(e), float(n)))
            sq.append(row["type"].strip() == "square")
    en, sq = np.array(en), np.array(sq)
    pairs = np.array(sorted(spatial.cKDTree(en).query_pairs(LINK_M)))
    parent = np.arange(len(en))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
    roots = np.array([root(i) for i in range(len(en))])
    out = []
    for r in np.unique(roots):
        idx = np.flatnonzero(roots == r)
        off = en[idx] - en[idx].mean(axis=0)
        out.append((off, sq[idx]))
    log.info("gen_b: %d real pool clusters from %d dev points", len(out), len(en))
    return tuple(out)


def random_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(1, 25))
    off = np.cumsum(rng.normal(0, 20, (k, 2)), axis=0)
    return off - off.mean(axis=0), rng.uniform(size=k) < 0.6

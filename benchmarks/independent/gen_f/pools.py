"""Real leaching-pool cluster geometry from the Ballinger / Earth Genome hand-placed pool points.

Pools are grouped by single linkage (60 m) in UTM 47N metres; each cluster is stored as offsets
from its centroid plus a per-pool size derived from the nearest-neighbour spacing. Points in the
HOLDOUT box (lat >= 25.72 and lon >= 98.20) and the 25.70-25.72 gap band are dropped, whatever
the file contains. Without the data, a synthetic fallback (rows of pools along a bench) is used.
"""
import csv
import functools
import os
import warnings

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial import cKDTree

_FILE = os.path.join("kachin-rare-earth-labels-ballinger", "leaching_pools_points_dev.csv")


def _data_dir():
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    if env:
        return env
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    return os.path.join(repo, "..", "shared", "data")


def _allowed(lon, lat):
    holdout = (lat >= 25.72) & (lon >= 98.20)
    gap = (lat >= 25.70) & (lat < 25.72) & (lon >= 98.18)
    return ~(holdout | gap)


@functools.lru_cache(maxsize=1)
def clusters():
    """List of (offsets (n,2) metres [east, north], sizes (n,) metres, square (n,) bool)."""
    path = os.path.join(_data_dir(), _FILE)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        lon = np.array([float(r["x"]) for r in rows])
        lat = np.array([float(r["y"]) for r in rows])
        xy = np.array([[float(v) for v in r["geom"].split("(")[1].rstrip(")").split()] for r in rows])
        sq = np.array([r["type"] == "square" for r in rows])
        keep = _allowed(lon, lat)
        xy, sq = xy[keep], sq[keep]
        if len(xy) < 10:
            raise ValueError("too few pool points")
    except (OSError, ValueError, KeyError, IndexError) as exc:
        warnings.warn(f"gen_f: pool points not available ({exc}); using synthetic pool clusters")
        return _synthetic()
    nn = cKDTree(xy).query(xy, 2)[0][:, 1]
    lab = fcluster(linkage(xy, "single"), 60.0, "distance")
    out = []
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        if len(idx) < 2:
            continue
        off = xy[idx] - xy[idx].mean(0)
        size = np.clip(0.75 * nn[idx], 6.0, 35.0)
        out.append((off, size, sq[idx]))
    return out


def _synthetic():
    rng = np.random.default_rng(1234)
    out = []
    for _ in range(60):
        n = int(rng.integers(2, 16))
        rows = int(rng.integers(1, 4))
        k = np.arange(n)
        off = np.stack([(k % max(1, n // rows)) * rng.uniform(10, 18), (k // max(1, n // rows)) * rng.uniform(10, 20)], 1)
        off = off - off.mean(0) + rng.normal(0, 2, off.shape)
        out.append((off, rng.uniform(6, 14, n), rng.random(n) < 0.6))
    return out

"""Leaching-pond cluster templates from the real hand-placed pool points.

Source: /work/shared/data/kachin-rare-earth-labels-ballinger/leaching_pools_points_dev.csv
(Earth Genome / O. Ballinger, CC BY 4.0).  Points inside the holdout box (lat >= 25.72 and
lon >= 98.20) and the 25.70-25.72 gap band are dropped.  Pools are grouped by single linkage
at 30 m (UTM 47N metres, the csv `geom` column); each group becomes a template of offsets
from its centroid plus the pool type (square / circular) and its nearest-neighbour spacing,
which bounds the pond size (median real spacing is ~15 m, so most ponds are 7-12 m across).
"""
import csv
import functools
import os
import warnings
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

_LINK_M = 30.0
_REL = Path("kachin-rare-earth-labels-ballinger") / "leaching_pools_points_dev.csv"


def _data_file():
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    cands = [Path(env) / _REL] if env else []
    repo = Path(__file__).resolve().parents[3]
    cands.append(repo.parent / "shared" / "data" / _REL)
    for c in cands:
        if c.is_file():
            return c
    return None


def _in_holdout(lon, lat):
    hold = (lat >= 25.72) & (lon >= 98.20)
    gap = (lat >= 25.70) & (lat < 25.72) & (lon >= 98.18)
    return hold | gap


def _read_points(path):
    lon, lat, xs, ys, typ = [], [], [], [], []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            g = r["geom"].strip()
            a, b = g[g.index("(") + 1:g.index(")")].split()
            lon.append(float(r["x"]))
            lat.append(float(r["y"]))
            xs.append(float(a))
            ys.append(float(b))
            typ.append(1 if r["type"].strip().lower().startswith("c") else 0)
    lon, lat = np.array(lon), np.array(lat)
    keep = ~_in_holdout(lon, lat)
    xy = np.stack([np.array(xs), np.array(ys)], 1)[keep]
    return xy, np.array(typ)[keep]


def _synthetic(rng_seed=12345):
    rng = np.random.default_rng(rng_seed)
    out = []
    for _ in range(150):
        n = int(np.clip(rng.geometric(0.22), 1, 20))
        sp = rng.uniform(11, 20)
        cols = max(1, int(np.sqrt(n * rng.uniform(0.5, 3))))
        ij = np.array([(k % cols, k // cols) for k in range(n)], dtype=float)
        xy = ij * sp + rng.normal(0, 2.0, ij.shape)
        xy -= xy.mean(0)
        nn = np.full(n, sp) if n > 1 else np.array([25.0])
        out.append(np.column_stack([xy, rng.integers(0, 2, n), nn]))
    return out


@functools.lru_cache(maxsize=1)
def templates():
    """List of arrays (k, 4): dx_m (east), dy_m (north), type (0 square, 1 circle), nn_m."""
    path = _data_file()
    if path is None:
        warnings.warn("gen_g: real pool points not found (set MINEWATCH_SHARED_DATA); "
                      "using synthetic pond clusters", RuntimeWarning, stacklevel=2)
        return tuple(_synthetic())
    xy, typ = _read_points(path)
    if len(xy) < 10:
        return tuple(_synthetic())
    tree = cKDTree(xy)
    d, _ = tree.query(xy, 2)
    nn = d[:, 1]
    pairs = tree.sparse_distance_matrix(tree, _LINK_M)
    _, lab = connected_components(pairs, directed=False)
    out = []
    for k in range(lab.max() + 1):
        m = lab == k
        p = xy[m] - xy[m].mean(0)
        out.append(np.column_stack([p, typ[m], nn[m]]))
    return tuple(out)


def pond_sizes(rng, nn):
    """Pond side / diameter in metres from the real nearest-neighbour spacing (5..40 m)."""
    nn = np.asarray(nn, dtype=float)
    iso = rng.lognormal(np.log(14.0), 0.35, nn.shape)
    s = np.where(nn < 30, nn * rng.uniform(0.72, 0.92, nn.shape), iso)
    return np.clip(s, 5.0, 40.0)

"""Pond-cluster layouts (relative geometry) from the real Kachin pool points, holdout excluded."""
from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np

_CLUSTERS: list | None = None
_LINK_M = 60.0  # single-linkage distance (m) that groups pools into one cluster


def data_dir() -> str:
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    if env:
        return env
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    return os.path.join(repo, "..", "shared", "data")


def _in_poly(lon: float, lat: float, ring: list) -> bool:
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i][:2]
        x2, y2 = ring[(i + 1) % n][:2]
        if (y1 > lat) != (y2 > lat):
            if lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


def _load() -> list:
    d = os.path.join(data_dir(), "kachin-rare-earth-labels-ballinger")
    f_csv = os.path.join(d, "leaching_pools_points_dev.csv")
    f_hold = os.path.join(d, "holdout_region_DO_NOT_TUNE_HERE.geojson")
    if not (os.path.exists(f_csv) and os.path.exists(f_hold)):
        print("gen_e: real pool points not found; using RANDOM pond-cluster layouts", file=sys.stderr)
        return []
    with open(f_hold) as fh:
        rings = [ft["geometry"]["coordinates"][0] for ft in json.load(fh)["features"]]
    pts, sq = [], []
    with open(f_csv) as fh:
        for r in csv.DictReader(fh):
            lon, lat = float(r["x"]), float(r["y"])
            # exclude the holdout box and the gap band (and, redundantly, the stated rule)
            if any(_in_poly(lon, lat, g) for g in rings) or (lat >= 25.70 and lon >= 98.18):
                continue
            g = r["geom"].replace("POINT", "").strip(" ()").split()
            pts.append((float(g[0]), float(g[1])))
            sq.append(r["type"] == "square")
    if not pts:
        return []
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    p = np.asarray(pts)
    sq = np.asarray(sq)
    pairs = cKDTree(p).query_pairs(_LINK_M, output_type="ndarray")
    import scipy.sparse as sp
    g = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(p), len(p)))
    _, lab = connected_components(g, directed=False)
    out = []
    for k in np.unique(lab):
        m = lab == k
        rel = p[m] - p[m].mean(0)
        rel[:, 1] *= -1  # northing -> row direction
        out.append((rel.astype(np.float32), sq[m]))
    return out


def clusters() -> list:
    global _CLUSTERS
    if _CLUSTERS is None:
        _CLUSTERS = _load()
    return _CLUSTERS


def draw_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Relative pond centres (n, 2) in metres (row, col order after rotation) and a square-pond flag per pond."""
    cl = clusters()
    if cl:
        rel, sq = cl[rng.integers(len(cl))]
        rel = rel.copy()
    else:
        n = int(rng.integers(1, 25))
        rel = rng.normal(0, rng.uniform(15, 80), (n, 2)).astype(np.float32)
        sq = rng.random(n) < 0.6
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    rel = rel @ rot.T
    rel += rng.normal(0, 2.0, rel.shape)  # position uncertainty of hand-placed points
    return rel[:, ::-1].copy(), np.asarray(sq)

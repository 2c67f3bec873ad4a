"""Pond-cluster layouts from the real hand-placed pool points (DEV subset only).

Reads `leaching_pools_points_dev.csv` (Earth Genome / O. Ballinger, CC BY 4.0) at run time, drops every
point inside any polygon of `holdout_region_DO_NOT_TUNE_HERE.geojson`, groups the rest into clusters by
single linkage (pools closer than LINK_M metres), and keeps each cluster's RELATIVE geometry only
(offsets in metres from the cluster centroid, and each pool's square/circular type).  Absolute positions
are never used.  If the file is missing, a random layout is used instead (logged once).
"""
import csv
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)
LINK_M = 60.0          # single-linkage distance between pools of one cluster
SUBDIR = "kachin-rare-earth-labels-ballinger"


def _data_dir():
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "data"


def _in_ring(x, y, ring):
    """Even-odd point-in-polygon for arrays x, y against one ring [(x, y), ...]."""
    inside = np.zeros(x.shape, bool)
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        cross = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xin = (x2 - x1) * (y - y1) / (y2 - y1) + x1
        inside ^= cross & (x < xin)
    return inside


def _holdout_mask(lon, lat, path):
    gj = json.loads(Path(path).read_text())
    out = np.zeros(lon.shape, bool)
    for f in gj.get("features", []):
        g = f.get("geometry") or {}
        polys = [g["coordinates"]] if g.get("type") == "Polygon" else g.get("coordinates", [])
        for poly in polys:
            out |= _in_ring(lon, lat, poly[0])
    return out


@lru_cache(maxsize=1)
def real_clusters():
    """Tuple of clusters; each is (offsets (n, 2) float32 metres, is_square (n,) bool). Empty if absent."""
    d = _data_dir() / SUBDIR
    csv_path, hold_path = d / "leaching_pools_points_dev.csv", d / "holdout_region_DO_NOT_TUNE_HERE.geojson"
    if not csv_path.exists() or not hold_path.exists():
        log.warning("gen_a: %s not found; using RANDOM pond-cluster layouts", csv_path)
        return ()
    lon, lat, ex, ny, sq = [], [], [], [], []
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            lon.append(float(row["x"]))
            lat.append(float(row["y"]))
            e, n = row["geom"].split("(")[1].rstrip(")").split()
            ex.append(float(e))
            ny.append(float(n))
            sq.append(row["type"].strip() == "square")
    lon, lat = np.array(lon), np.array(lat)
    keep = ~_holdout_mask(lon, lat, hold_path)
    xy = np.c_[ex, ny][keep]
    sq = np.array(sq)[keep]
    pairs = cKDTree(xy).query_pairs(LINK_M, output_type="ndarray")
    n = len(xy)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    ncomp, lab = connected_components(g, directed=False)
    out = []
    for c in range(ncomp):
        idx = np.flatnonzero(lab == c)
        pts = xy[idx]
        out.append(((pts - pts.mean(0)).astype(np.float32), sq[idx]))
    log.info("gen_a: %d real pond clusters from %d DEV points (%d holdout/gap points excluded)",
             len(out), n, int((~keep).sum()))
    return tuple(out)


def random_cluster(rng):
    """Fallback: 1-30 pools, spacing 12-45 m, in a loose random cluster."""
    k = int(min(30, 1 + rng.geometric(0.15)))
    pts = [np.zeros(2)]
    while len(pts) < k:
        base = pts[rng.integers(len(pts))]
        ang = rng.uniform(0, 2 * np.pi)
        p = base + rng.uniform(12, 45) * np.array([np.cos(ang), np.sin(ang)])
        if min(np.hypot(*(p - q)) for q in pts) > 10:
            pts.append(p)
    pts = np.array(pts)
    return (pts - pts.mean(0)).astype(np.float32), rng.random(k) < 0.6


def cluster(rng, max_extent_m):
    """One cluster layout (offsets in m, randomly rotated/mirrored) no wider than max_extent_m."""
    cl = real_clusters()
    for _ in range(20):
        if cl:
            off, sq = cl[rng.integers(len(cl))]
        else:
            off, sq = random_cluster(rng)
        if np.ptp(off, axis=0).max(initial=0) <= max_extent_m:
            break
    else:
        off, sq = np.zeros((1, 2), np.float32), np.array([True])
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    off = off @ rot.T
    if rng.random() < 0.5:
        off[:, 0] *= -1
    return off, sq

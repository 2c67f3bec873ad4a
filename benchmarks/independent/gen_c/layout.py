"""Pond-cluster geometry from real hand-placed pool points (dev subset only), with a random fallback.

Reads ``leaching_pools_points_dev.csv`` at run time from ``$MINEWATCH_SHARED_DATA/kachin-rare-earth-labels-ballinger``
(or ``<repo>/../shared/data/...``). Every point inside any polygon of ``holdout_region_DO_NOT_TUNE_HERE.geojson``
is dropped before use. Only RELATIVE geometry is kept: pool offsets (m) from the cluster centroid and the
pool type (square / circular). Clusters are single-linkage groups with a 60 m link distance.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.sparse import coo_matrix
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)
SUBDIR = "kachin-rare-earth-labels-ballinger"
LINK_M = 60.0


def _data_dir() -> Path:
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    if env:
        return Path(env) / SUBDIR
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "data" / SUBDIR


def _point_in_poly(x: np.ndarray, y: np.ndarray, ring: list) -> np.ndarray:
    ring = np.asarray(ring, dtype=float)
    inside = np.zeros(x.shape, bool)
    xs, ys = ring[:, 0], ring[:, 1]
    n = len(ring)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        cond = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (x2 - x1) * (y - y1) / (y2 - y1) + x1
        inside ^= cond & (x < xint)
    return inside


def _holdout_mask(lon: np.ndarray, lat: np.ndarray, path: Path) -> np.ndarray:
    gj = json.loads(path.read_text())
    out = np.zeros(lon.shape, bool)
    for feat in gj.get("features", []):
        g = feat.get("geometry") or {}
        polys = [g["coordinates"]] if g.get("type") == "Polygon" else g.get("coordinates", [])
        for poly in polys:
            ring = poly[0]
            r = np.asarray(ring, float)
            # closed boxes: include the boundary too (conservative exclusion)
            box = (lon >= r[:, 0].min()) & (lon <= r[:, 0].max()) & (lat >= r[:, 1].min()) & (lat <= r[:, 1].max())
            out |= _point_in_poly(lon, lat, ring) | (box & (len(ring) == 5))
    return out


@lru_cache(maxsize=1)
def real_clusters() -> tuple:
    """Tuple of clusters; each is (offsets_m (n,2) as (east, north), is_square (n,) bool). Empty if no data."""
    d = _data_dir()
    csv_path, hold_path = d / "leaching_pools_points_dev.csv", d / "holdout_region_DO_NOT_TUNE_HERE.geojson"
    if not csv_path.exists() or not hold_path.exists():
        log.warning("gen_c: pool CSV or holdout file not found under %s; using RANDOM pond-cluster layout", d)
        return ()
    lon, lat, e, n, sq = [], [], [], [], []
    with csv_path.open() as fh:
        for row in csv.DictReader(fh):
            lon.append(float(row["x"]))
            lat.append(float(row["y"]))
            g = row["geom"].strip().removeprefix("POINT").strip(" ()").split()
            e.append(float(g[0]))
            n.append(float(g[1]))
            sq.append(row["type"].strip() == "square")
    lon, lat, e, n, sq = map(np.asarray, (lon, lat, e, n, sq))
    keep = ~_holdout_mask(lon, lat, hold_path)
    e, n, sq = e[keep], n[keep], sq[keep]
    xy = np.stack([e, n], 1)
    pairs = cKDTree(xy).query_pairs(LINK_M, output_type="ndarray")
    m = len(xy)
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    ncomp, lab = connected_components(adj, directed=False)
    out = []
    for c in range(ncomp):
        idx = np.flatnonzero(lab == c)
        if len(idx) < 2:
            continue
        off = xy[idx] - xy[idx].mean(0)
        if np.abs(off).max() > 400:  # very large merged belts: keep the part near the centre
            near = np.hypot(off[:, 0], off[:, 1]) < 400
            idx, off = idx[near], off[near] - off[near].mean(0)
            if len(idx) < 2:
                continue
        out.append((off, sq[idx]))
    log.info("gen_c: %d real pond clusters from %d dev pools (%d dropped in holdout/gap)", len(out), m, int((~keep).sum()))
    return tuple(out)


def random_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fallback: a jittered grid/row of 2-25 pools with 15-35 m spacing."""
    k = int(rng.integers(2, 26))
    cols = int(rng.integers(1, 6))
    sp = rng.uniform(15, 35)
    i = np.arange(k)
    off = np.stack([(i % cols) * sp, (i // cols) * sp], 1).astype(float)
    off += rng.normal(0, sp * 0.15, off.shape)
    return off - off.mean(0), np.full(k, rng.random() < 0.6)


def draw_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """(offsets_m, is_square, from_real). Real geometry is rotated slightly and scaled by 0.85-1.15."""
    cl = real_clusters()
    if not cl:
        off, sq = random_cluster(rng)
        return off, sq, False
    off, sq = cl[int(rng.integers(len(cl)))]
    a = rng.uniform(-0.4, 0.4)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (off @ rot.T) * rng.uniform(0.85, 1.15), sq.copy(), True


def nn_spacing(off: np.ndarray) -> np.ndarray:
    """Distance from each pool to its nearest neighbour in the cluster (m)."""
    if len(off) < 2:
        return np.full(len(off), 40.0)
    d, _ = cKDTree(off).query(off, k=2)
    return d[:, 1]

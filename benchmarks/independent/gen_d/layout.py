"""Pond-cluster layouts: the RELATIVE geometry of real hand-placed leaching-pool clusters in the Kachin belt
(Ballinger / Earth Genome dev subset), read at run time; every point inside any polygon of the holdout
GeoJSON is dropped.  Falls back to a random layout when the file is absent."""
from __future__ import annotations

import csv
import json
import logging
import os
import pathlib
import re

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

log = logging.getLogger(__name__)
LINK_M = 80.0  # pools closer than this (single linkage) belong to one cluster
_CLUSTERS: list | None = None
_SOURCE = ""


def _data_dir() -> pathlib.Path:
    env = os.environ.get("MINEWATCH_SHARED_DATA")
    if env:
        return pathlib.Path(env)
    repo = pathlib.Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "data"


def _in_poly(x: np.ndarray, y: np.ndarray, ring) -> np.ndarray:
    """even-odd point-in-polygon (ray casting), vectorised over points."""
    ring = np.asarray(ring, dtype=float)
    inside = np.zeros(x.shape, bool)
    for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:]):
        cond = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= cond & (x < xc)
    return inside


def _holdout_mask(lon: np.ndarray, lat: np.ndarray, path: pathlib.Path) -> np.ndarray:
    gj = json.loads(path.read_text())
    m = np.zeros(lon.shape, bool)
    for f in gj.get("features", []):
        g = f["geometry"]
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        for poly in polys:
            inside = _in_poly(lon, lat, poly[0])
            for hole in poly[1:]:
                inside &= ~_in_poly(lon, lat, hole)
            m |= inside
    return m


def load_clusters() -> list[tuple[np.ndarray, np.ndarray]]:
    """list of (offsets (n, 2) metres east/north from the cluster centroid, is_square (n,) bool)."""
    global _CLUSTERS, _SOURCE
    if _CLUSTERS is not None:
        return _CLUSTERS
    d = _data_dir() / "kachin-rare-earth-labels-ballinger"
    try:
        lon, lat, ex, ny, sq = [], [], [], [], []
        with open(d / "leaching_pools_points_dev.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                m = re.match(r"POINT \(([-\d.eE+]+) ([-\d.eE+]+)\)", row["geom"])
                if not m:
                    continue
                lon.append(float(row["x"]))
                lat.append(float(row["y"]))
                ex.append(float(m.group(1)))
                ny.append(float(m.group(2)))
                sq.append(row["type"].strip() == "square")
        lon, lat, ex, ny, sq = map(np.asarray, (lon, lat, ex, ny, sq))
        keep = ~_holdout_mask(lon, lat, d / "holdout_region_DO_NOT_TUNE_HERE.geojson")
        ex, ny, sq = ex[keep], ny[keep], sq[keep]
        lab = fcluster(linkage(np.c_[ex, ny], method="single"), LINK_M, criterion="distance")
        out = []
        for k in np.unique(lab):
            i = lab == k
            xy = np.c_[ex[i], ny[i]]
            out.append((xy - xy.mean(axis=0), sq[i]))
        _CLUSTERS, _SOURCE = out, f"{len(out)} real clusters from {int(keep.sum())} dev pools (holdout excluded)"
    except (OSError, KeyError, ValueError) as e:
        log.warning("gen_d: pool CSV unavailable (%s); using RANDOM pond-cluster layouts", e)
        _CLUSTERS, _SOURCE = [], "random layouts (pool CSV absent)"
    return _CLUSTERS


def random_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """fallback: a loose grid-ish cluster of 1-25 pools 15-40 m apart."""
    n = int(np.clip(rng.lognormal(1.6, 0.8), 1, 25))
    step = rng.uniform(15, 40)
    cols = max(1, int(np.sqrt(n) * rng.uniform(0.7, 1.5)))
    ij = np.array([(k % cols, k // cols) for k in range(n)], float)
    xy = ij * step + rng.normal(0, step * 0.2, (n, 2))
    return xy - xy.mean(axis=0), rng.random(n) < 0.6


def draw_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """one cluster's relative layout, randomly rotated (and possibly mirrored)."""
    cl = load_clusters()
    xy, sq = cl[rng.integers(len(cl))] if cl else random_cluster(rng)
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    xy = xy @ rot.T
    if rng.random() < 0.5:
        xy = xy * np.array([-1.0, 1.0])
    return xy, sq

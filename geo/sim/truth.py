"""Compare a run with simulator truth: per-class IoU and growth error (used by the demo and its tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import CrsError
from geo.results.export import read_raster
from geo.grid import GeoGrid


def aligned_pair(a: np.ndarray, ga: GeoGrid, b: np.ndarray, gb: GeoGrid) -> tuple[np.ndarray, np.ndarray]:
    """Crop two rasters on the same CRS and pixel lattice to their common window."""
    if ga.crs != gb.crs or abs(ga.resolution - gb.resolution) > 1e-9:
        raise CrsError(f"rasters differ in CRS or resolution ({ga.crs}, {ga.resolution} vs {gb.crs}, {gb.resolution})")
    r = ga.resolution
    la, ba, ra, ta = ga.bounds
    lb, bb, rb, tb = gb.bounds
    left, right, top, bottom = max(la, lb), min(ra, rb), min(ta, tb), max(ba, bb)
    if right <= left or top <= bottom:
        raise CrsError("rasters do not overlap")
    w, h = int(round((right - left) / r)), int(round((top - bottom) / r))

    def crop(x, g):
        c0, r0 = int(round((left - g.transform.c) / r)), int(round((g.transform.f - top) / r))
        return x[r0 : r0 + h, c0 : c0 + w]

    return crop(a, ga), crop(b, gb)


def iou(pred: np.ndarray, truth: np.ndarray, value: int) -> float:
    """Intersection over union of ``pred == value`` and ``truth == value`` (NaN when both are empty)."""
    p, t = pred == value, truth == value
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else float("nan")


def compare_with_truth(run_dir: Path, truth_dir: Path, periods: list[str]) -> dict:
    """IoU per class and period, and measured vs true growth (footprint area and site count)."""
    ious = {}
    for p in periods:
        pred, gp = read_raster(run_dir / f"classmap_{p}.tif")
        truth, gt = read_raster(truth_dir / f"classmap_{p}.tif")
        a, b = aligned_pair(pred, gp, truth, gt)
        ious[p] = {"cleared_land": iou(a, b, 1), "leaching_pond": iou(a, b, 2)}
    measured = pd.read_csv(run_dir / "summary.csv")
    truth = pd.read_csv(truth_dir / "summary.csv")

    def growth(df, col):
        first = float(df.loc[df["period"] == periods[0], col].iloc[0])
        last = float(df.loc[df["period"] == periods[-1], col].iloc[0])
        return (last - first) / first * 100 if first else float("nan")

    out = {"iou": ious}
    for col in ("footprint_area_m2", "site_count", "pond_area_m2", "cleared_area_m2"):
        m, t = growth(measured, col), growth(truth, col)
        out[col] = {"measured_growth_pct": m, "truth_growth_pct": t, "error_pp": m - t}
    return out

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


def label_from_truth(sample_path: Path, truth_dir: Path) -> int:
    """Fill the ``reference`` field of a ``minewatch sample`` GeoPackage from the simulator's truth class maps.

    The simulator plays the analyst: each point gets the truth class of the pixel it falls in. Returns the number
    of points labelled; ``labelled_by`` says where the labels came from.
    """
    import geopandas as gpd

    from geo.results.sampling import LAYER, sample_qml
    from geo.results.styles import write_layer_styles

    df = gpd.read_file(sample_path, layer=LAYER)
    ref = np.zeros(len(df), dtype=np.int64)
    for period in df["period"].unique():
        truth, grid = read_raster(Path(truth_dir) / f"classmap_{period}.tif")
        sel = (df["period"] == period).to_numpy()
        pts = df.loc[sel].to_crs(grid.crs).geometry
        t = grid.transform  # north-up grid
        cols, rows = (pts.x.to_numpy() - t.c) / t.a, (pts.y.to_numpy() - t.f) / t.e
        r = np.clip(np.floor(rows).astype(int), 0, grid.height - 1)
        c = np.clip(np.floor(cols).astype(int), 0, grid.width - 1)
        ref[sel] = truth[r, c]
    df["reference"] = ref
    df["labelled_by"] = "simulator truth (geo.sim.truth.label_from_truth), standing in for an analyst"
    Path(sample_path).unlink()
    df.to_file(sample_path, layer=LAYER, driver="GPKG")
    write_layer_styles(sample_path, {LAYER: sample_qml()})
    return len(df)

"""What a run folder says about its own inputs: its manifest, its AOI mask, and which class maps an estimate
was made from (so that a rerun's new maps are never reported beside an old map's estimate)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from geo.aoi import read_aoi, region_mask, reproject_geometry
from geo.errors import UsageError
from geo.results.export import read_raster

log = logging.getLogger(__name__)


def read_manifest(run_dir: Path) -> dict:
    """``manifest.json`` of a run folder ({} when absent); a corrupt one is refused as ``minewatch change`` does."""
    man = run_dir / "manifest.json"
    if not man.exists():
        return {}
    try:
        data = json.loads(man.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{man} is not valid JSON ({exc}); is {run_dir} a minewatch run folder?") from None
    except OSError as exc:
        raise UsageError(f"cannot read {man} ({exc.strerror or exc}); is {run_dir} a minewatch run folder?") from None
    if not isinstance(data, dict):
        raise UsageError(f"{man} is not valid JSON (it holds a {type(data).__name__}, not an object); is {run_dir} "
                         "a minewatch run folder?")
    inputs = data.get("inputs")
    return {**data, "inputs": inputs if isinstance(inputs, dict) else {}}


def model_checks_of(run_dir: Path) -> dict:
    """The manifest's per-season ``model_checks`` (docs/MODEL_CHECKS.md) for a summary line; {} when the manifest is
    absent, unreadable or holds none (it says nothing then, rather than stopping what prints it)."""
    try:
        checks = read_manifest(Path(run_dir)).get("model_checks")
    except UsageError:
        return {}
    return checks if isinstance(checks, dict) else {}


def run_region(run_dir: Path, grid) -> np.ndarray:
    """Pixels inside the run's AOI (from the manifest's AOI file), else the whole grid."""
    path = read_manifest(run_dir).get("inputs", {}).get("aoi_path")
    if isinstance(path, str) and path and Path(path).is_file():
        aoi = read_aoi(path)
        return region_mask(reproject_geometry(aoi.geometry, 4326, grid.crs).wkt, grid)
    log.warning("the run's AOI file is not at hand; the whole class-map grid is the sampled population")
    return np.ones(grid.shape, bool)


def classmap_digest(classes: np.ndarray) -> str:
    """sha256 of a class map's pixels and shape: which map an estimate was made from."""
    h = hashlib.sha256(repr(tuple(classes.shape)).encode())
    h.update(np.ascontiguousarray(classes, dtype=np.uint8).tobytes())
    return h.hexdigest()


def stale_estimate_periods(run_dir: str | Path, est: pd.DataFrame) -> list[str]:
    """Seasons of ``estimate.csv`` whose class map is no longer the one the estimate was made from.

    A rerun with other settings rewrites the class maps; an estimate from the old maps would be reported beside the
    new ones. Checked by the ``classmap_sha256`` column, or, for an estimate written before it existed, by its
    mapped footprint area against the map's (equal to within half a pixel).
    """
    run_dir, stale = Path(run_dir), []
    for period, rows in est.groupby("period", sort=False):
        path = run_dir / f"classmap_{period}.tif"
        if not path.exists():
            stale.append(str(period))
            continue
        classes, grid = read_raster(path)
        digest = rows["classmap_sha256"].dropna() if "classmap_sha256" in rows else pd.Series(dtype=str)
        if len(digest):
            current = str(digest.iloc[0]) == classmap_digest(classes)
        else:
            fp = rows.loc[rows["class"] == "footprint", "map_area_m2"] if "map_area_m2" in rows else pd.Series()
            if not len(fp) or not np.isfinite(float(fp.iloc[0])):
                continue  # nothing to check it by
            mapped = float((np.isin(classes, [1, 2]) & run_region(run_dir, grid)).sum()) * grid.resolution**2
            current = abs(mapped - float(fp.iloc[0])) <= 0.5 * grid.resolution**2
        if not current:
            stale.append(str(period))
    return stale

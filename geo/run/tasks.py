"""One pure, independent, resumable unit of work: a (period, tile) pair.

A task loads the tile (plus a halo of context) from its STAC items, masks clouds, composites,
detects, and writes its rasters atomically into ``tasks/<period>/<tile>/``; ``done.json`` is written
last, so a task folder without it is unfinished and is redone on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
from affine import Affine

from geo.stages.cloud import scl_clear_mask
from geo.stages.composite import median_composite
from geo.config import RunParams
from geo.errors import portable_error
from geo.results.export import write_raster
from geo.results.rasters import write_classmap, write_confidence
from geo.stages.vectorize import NOT_OBSERVED
from geo.fsutil import write_json
from geo.grid import GeoGrid
from geo.aoi import region_mask
from geo.stack import Composite

log = logging.getLogger(__name__)

#: Composite bands stored per task (reflectance × 10000 as uint16, 0 = no data).
STORED_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs, in plain picklable values.

    Attributes:
        period: period label.
        tile_id: tile id (file-name safe).
        grid: tile grid (without halo).
        items: STAC item dicts of the period that touch the AOI.
        aoi_wkt: AOI polygon in the grid's CRS (WKT).
        out_dir: task folder.
        params: run parameters.
        cache_dir: where fetched windows are cached.
        weights_sha256: SHA-256 of the model weights the task uses (``""`` for the rules), part of :attr:`key`,
            so new weights rerun the task.
    """

    period: str
    tile_id: str
    grid: dict
    items: tuple[dict, ...]
    aoi_wkt: str
    out_dir: str
    params: RunParams
    cache_dir: str | None
    weights_sha256: str = ""

    @property
    def key(self) -> str:
        """Hash of exactly what shapes this task's rasters: its grid, its scenes (ids and asset hrefs without
        query strings, so a renewed signature is no change), the cloud mask and the detector settings.

        Search settings (``max_cloud``, provider) enter only through the scenes they select, and the
        vector/site/change settings not at all, so changing them reruns only the tasks they affect.
        """
        from geo.sources.remote import redact

        d = self.params.to_dict()
        scenes = sorted((i["id"], sorted((k, redact(a.get("href", ""))) for k, a in (i.get("assets") or {}).items()))
                        for i in self.items)
        blob = {"grid": self.grid, "scenes": scenes, "cloud": d["cloud"],
                "detect": {k: d["detect"][k] for k in ("method", "halo_px", "device")}}
        if self.weights_sha256:  # absent for the rules, so their keys are those of earlier versions
            blob["weights_sha256"] = self.weights_sha256
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def is_done(spec: TaskSpec) -> bool:
    """True when the task folder holds a complete result made with the same inputs and parameters."""
    done = Path(spec.out_dir) / "done.json"
    try:
        return json.loads(done.read_text())["key"] == spec.key
    except (OSError, ValueError, KeyError):
        return False


def _pad(grid: GeoGrid, halo: int) -> GeoGrid:
    t = grid.transform @ Affine.translation(-halo, -halo)
    return GeoGrid(grid.crs, t, grid.width + 2 * halo, grid.height + 2 * halo)


def composite_for(spec: TaskSpec, load_grid: GeoGrid) -> tuple[Composite, int]:
    """Load, mask and composite the task's items on ``load_grid``; returns the composite and scene count."""
    from geo.sources.load import load_stack  # network/disk edge

    items = [pystac.Item.from_dict(d) for d in spec.items]
    stack = load_stack(items, load_grid, bands=STORED_BANDS, workers=spec.params.io_threads,
                       cache_dir=Path(spec.cache_dir) if spec.cache_dir else None)
    # the composite itself drops observations with a non-finite band: no full-size finiteness pass here
    if stack.scl is not None:
        clear = scl_clear_mask(stack.scl, spec.params.cloud)
    else:
        clear = np.ones((stack.data.shape[0], *stack.data.shape[2:]), bool)
    return median_composite(stack, clear), len(items)


def run_task(spec: TaskSpec) -> dict:
    """Process one task and return its small stats dict (also written to ``done.json``).

    Its http(s) reads follow redirects only to the hosts its run allows (:func:`task_allowlist`). Errors leave
    it portable (:func:`geo.errors.portable_error`): with their class and exit code across any executor, a full
    disk as :class:`~geo.errors.OutputError`, anything unforeseen as :class:`~geo.errors.UnexpectedError`.
    """
    from geo.sources.remote import use_allowlist

    _quiet_worker_failures()
    try:
        with use_allowlist(task_allowlist(spec)):
            return _run_task(spec)
    except Exception as exc:  # noqa: BLE001 — re-raised below, outside this handler (no chained context)
        err = portable_error(exc, f"task {spec.period}/{spec.tile_id} failed with ")
    raise err


class _DropComputeFailed(logging.Filter):
    """Drops a Dask worker's "Compute Failed" dump of a task error: the error itself travels back to the
    client, which reports it as one line (a multi-kilobyte dump per task would bury it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


def _quiet_worker_failures() -> None:
    """In a Dask worker: no "Compute Failed" dumps, and GDAL's messages (e.g. ``_tiffSeekProc: No space left on
    device``, already carried by the task's error) not printed bare by logging's last-resort handler."""
    worker_log = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _DropComputeFailed) for f in worker_log.filters):
        worker_log.addFilter(_DropComputeFailed())
    gdal_log = logging.getLogger("rasterio")
    if not logging.getLogger().handlers and not gdal_log.handlers:
        gdal_log.addHandler(logging.NullHandler())


def task_allowlist(spec: TaskSpec):
    """The hosts (and ports) this task may read from or be redirected to: its provider's (:func:`geo.sources.
    providers.asset_allowlist`; for a local catalogue, the hosts its own items name)."""
    from geo.sources.providers import asset_allowlist

    return asset_allowlist(spec.params.search.provider, spec.params.search.asset_hosts, spec.items)


def _run_task(spec: TaskSpec) -> dict:
    from geo.stages.detect import FusionConfig, classify

    out = Path(spec.out_dir)
    (out / "done.json").unlink(missing_ok=True)  # the folder is unfinished until done.json is rewritten
    grid = GeoGrid.from_dict(spec.grid)
    halo = spec.params.detect.halo_px
    load_grid = _pad(grid, halo)
    comp, n_scenes = composite_for(spec, load_grid)
    method = spec.params.detect.method
    det = classify(comp, method=method, config=None if method == "rules" else FusionConfig(
        device=spec.params.detect.device, weights=spec.params.detect.weights or None))
    inner = (slice(halo, halo + grid.height), slice(halo, halo + grid.width))
    region = region_mask(spec.aoi_wkt, grid)
    count = comp.clear_count[inner]
    seen = region & (count > 0)  # outside the AOI or never clear: "not observed" (nodata), not background
    classes = np.where(seen, det.classes[inner], NOT_OBSERVED).astype(np.uint8)
    conf_pct = np.where(seen, np.round(det.confidence[inner] * 100), NOT_OBSERVED).astype(np.uint8)
    dn = np.nan_to_num(comp.data[(slice(None), *inner)] * 10000.0, nan=0.0)
    dn = np.clip(np.round(dn), 1, 65535).astype(np.uint16) * (count > 0)
    write_classmap(classes, grid, out / "classes.tif")
    write_confidence(conf_pct, grid, out / "confidence.tif")
    write_raster(count.astype(np.uint16), grid, out / "clear_count.tif")
    write_raster(dn.astype(np.uint16), grid, out / "composite.tif", nodata=0, descriptions=STORED_BANDS)
    n_region = int(region.sum())
    stats = {
        "key": spec.key, "scenes": sorted(i["id"] for i in spec.items), "period": spec.period, "tile": spec.tile_id, "n_scenes": n_scenes,
        "region_px": n_region, "clear_px": int(((count > 0) & region).sum()),
        "pond_px": int((classes == 2).sum()), "cleared_px": int((classes == 1).sum()),
    }
    write_json(out / "done.json", stats)
    log.info("task %s/%s done: %d scenes, %d pond px, %d cleared px", spec.period, spec.tile_id, n_scenes,
             stats["pond_px"], stats["cleared_px"])
    return stats

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
        cache_dir: where fetched windows are cached (None: no cache).
        weights_sha256: SHA-256 of the model weights the task uses (``""`` for the rules), part of :attr:`key`,
            so new weights rerun the task.
        cache_max_bytes: size cap of that cache (None: the cache's default).
        files_state: for scenes in local files, a hash of each asset file's size and modification time taken when
            the run was planned (:func:`local_files_state`), part of :attr:`key`: a COG replaced between a run and
            its resume makes its tasks redo (``""`` when every asset is remote, as before).
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
    cache_max_bytes: int | None = None
    files_state: str = ""

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
        if self.files_state:  # local archives only: remote assets are not statted (one request each)
            blob["files_state"] = self.files_state
        if self.weights_sha256:  # absent for the rules, so their keys are those of earlier versions
            blob["weights_sha256"] = self.weights_sha256
            # the model's test-time views (and, with them, the 2.1.1 fusion): a tile made otherwise is redone
            blob["views"] = d["detect"].get("views", 1)
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def local_files_state(items: tuple[dict, ...], seen: dict[str, tuple] | None = None) -> str:
    """Hash of the size and modification time of every asset of ``items`` that is a local file (``""`` when none
    is). Taken by the client when it plans the run, so workers that see other filesystems compute the same key.
    ``seen`` caches the stat of each path across tasks."""
    import os

    seen = {} if seen is None else seen
    state = []
    for it in items:
        for k, a in sorted((it.get("assets") or {}).items()):
            href = str(a.get("href", ""))
            path = href[7:] if href.startswith("file://") else href
            if not path or "://" in path:
                continue
            if path not in seen:
                try:
                    st = os.stat(path)
                    seen[path] = (st.st_size, st.st_mtime_ns)
                except OSError:
                    seen[path] = ("missing",)  # reading it fails with its own message
            state.append((it.get("id"), k, seen[path]))
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest() if state else ""


def is_done(spec: TaskSpec) -> bool:
    """True when the task folder holds a complete result made with the same inputs and parameters: its
    ``done.json`` names this task's key and every raster of :data:`TASK_FILES` is there (a deleted raster
    means the task is redone, not that the run reports without it)."""
    done = Path(spec.out_dir) / "done.json"
    try:
        same = json.loads(done.read_text())["key"] == spec.key
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return same and all((Path(spec.out_dir) / name).is_file() for name in TASK_FILES)


def _pad(grid: GeoGrid, halo: int) -> GeoGrid:
    t = grid.transform @ Affine.translation(-halo, -halo)
    return GeoGrid(grid.crs, t, grid.width + 2 * halo, grid.height + 2 * halo)


def stack_budget_bytes() -> int:
    """Bytes a task may spend on its stack of scenes (``MINEWATCH_TASK_MEMORY_MB``, default 1 GiB). A tile whose
    scenes need more is loaded and composited in strips of rows, so memory stays flat as scenes per season grow."""
    import os

    try:
        return max(1, int(os.environ.get("MINEWATCH_TASK_MEMORY_MB", "1024"))) << 20
    except ValueError:
        return 1024 << 20


#: Bytes per pixel per scene while a strip is loaded and composited: float32 windows as read and in the stack
#: (2 × 6 × 4), SCL twice (2), masks, the per-band median's working copies and allocator slack. Measured: a
#: worker's peak RSS grows ~78 B per tile pixel per extra scene (benchmarks/bench_belt.py, 9 → 25 scenes).
BYTES_PER_PX_SCENE = 80


def strip_rows(n_scenes: int, grid: GeoGrid, budget: int | None = None) -> int:
    """Rows per strip so that ``n_scenes`` scenes of a strip of ``grid`` fit the stack budget (at least 64)."""
    budget = stack_budget_bytes() if budget is None else budget
    per_row = max(1, n_scenes) * grid.width * BYTES_PER_PX_SCENE
    return max(64, min(grid.height, budget // per_row))


def _strip(grid: GeoGrid, r0: int, r1: int) -> GeoGrid:
    return GeoGrid(grid.crs, grid.transform @ Affine.translation(0, r0), grid.width, r1 - r0)


def composite_for(spec: TaskSpec, load_grid: GeoGrid) -> tuple[Composite, int]:
    """Load, mask and composite the task's items on ``load_grid``; returns the composite and scene count.

    Scenes are loaded strip by strip (:func:`strip_rows`) when all of them at once would exceed the stack budget;
    strips overlap by the cloud mask's buffer and the median is per pixel, so the result does not depend on them.
    """
    from geo.sources.load import load_stack  # network/disk edge

    items = [pystac.Item.from_dict(d) for d in spec.items]
    rows = strip_rows(len(items), load_grid)
    over = max(0, spec.params.cloud.buffer_px)  # cloud masks grow across strip edges: strips overlap that much
    data = count = bands = None
    for r0 in range(0, load_grid.height, rows):
        r1 = min(load_grid.height, r0 + rows)
        a0, a1 = max(0, r0 - over), min(load_grid.height, r1 + over)
        sgrid = load_grid if rows >= load_grid.height else _strip(load_grid, a0, a1)
        stack = load_stack(items, sgrid, bands=STORED_BANDS, workers=spec.params.io_threads,
                           cache_dir=Path(spec.cache_dir) if spec.cache_dir else None,
                           cache_max_bytes=spec.cache_max_bytes)
        # the composite itself drops observations with a non-finite band: no full-size finiteness pass here
        if stack.scl is not None:
            clear = scl_clear_mask(stack.scl, spec.params.cloud)
        else:
            clear = np.ones((stack.data.shape[0], *stack.data.shape[2:]), bool)
        part = median_composite(stack, clear)
        del stack, clear
        if sgrid is load_grid:
            return part, len(items)
        if data is None:
            bands = part.bands
            data = np.full((len(bands), *load_grid.shape), np.nan, np.float32)
            count = np.zeros(load_grid.shape, np.uint16)
        data[:, r0:r1] = part.data[:, r0 - a0:r1 - a0]
        count[r0:r1] = part.clear_count[r0 - a0:r1 - a0]
    return Composite(data=data, clear_count=count, bands=bands, grid=load_grid), len(items)


#: Rasters a task delivers, by file name in its task folder.
TASK_FILES = ("classes.tif", "confidence.tif", "clear_count.tif", "composite.tif")


def run_task(spec: TaskSpec) -> dict:
    """Process one task and return its result: ``{"stats": …, "files": {name: GeoTIFF bytes}}``.

    The task writes nothing: its result travels back to the client (through Dask on a cluster), which writes
    it with :func:`write_task_result`, so workers need not share the client's filesystem.

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
    from geo.results.export import raster_bytes
    from geo.stages.detect import FusionConfig, classify

    grid = GeoGrid.from_dict(spec.grid)
    halo = spec.params.detect.halo_px
    load_grid = _pad(grid, halo)
    comp, n_scenes = composite_for(spec, load_grid)
    method = spec.params.detect.method
    det = classify(comp, method=method, config=None if method == "rules" else FusionConfig(
        device=spec.params.detect.device, weights=spec.params.detect.weights or None, views=spec.params.detect.views))
    inner = (slice(halo, halo + grid.height), slice(halo, halo + grid.width))
    region = region_mask(spec.aoi_wkt, grid)
    count = comp.clear_count[inner]
    seen = region & (count > 0)  # outside the AOI or never clear: "not observed" (nodata), not background
    classes = np.where(seen, det.classes[inner], NOT_OBSERVED).astype(np.uint8)
    conf_pct = np.where(seen, np.round(det.confidence[inner] * 100), NOT_OBSERVED).astype(np.uint8)
    check = None
    if det.model_fp is not None:  # how sure the model is of what it maps (docs/MODEL_CHECKS.md)
        from geo.stages.input_check import unsure_counts
        from geo.stages.rules_check import rules_counts

        check = {**unsure_counts(det.model_fp[inner], seen),
                 "input_warnings": list((det.input_check or {}).get("warnings", []))}
        if det.rules_classes is not None:  # what the rules alone find, and how much of it the fused map left out
            check.update(rules_counts(det.rules_classes[inner], classes, seen, grid.pixel_area))
    del det
    dn = np.nan_to_num(comp.data[(slice(None), *inner)] * 10000.0, nan=0.0)
    dn = np.clip(np.round(dn), 1, 65535).astype(np.uint16) * (count > 0)
    del comp
    files = {
        "classes.tif": raster_bytes(classes, grid, nodata=NOT_OBSERVED, descriptions=("class",)),
        "confidence.tif": raster_bytes(conf_pct, grid, nodata=NOT_OBSERVED, descriptions=("confidence_pct",)),
        "clear_count.tif": raster_bytes(count.astype(np.uint16), grid),
        "composite.tif": raster_bytes(dn.astype(np.uint16), grid, nodata=0, descriptions=STORED_BANDS),
    }
    n_region = int(region.sum())
    stats = {
        "key": spec.key, "scenes": sorted(i["id"] for i in spec.items), "period": spec.period, "tile": spec.tile_id, "n_scenes": n_scenes,
        "region_px": n_region, "clear_px": int(((count > 0) & region).sum()),
        "pond_px": int((classes == 2).sum()), "cleared_px": int((classes == 1).sum()), "model_check": check,
    }
    log.info("task %s/%s done: %d scenes, %d pond px, %d cleared px", spec.period, spec.tile_id, n_scenes,
             stats["pond_px"], stats["cleared_px"])
    return {"stats": stats, "files": files}


def write_task_result(spec: TaskSpec, result: dict) -> dict:
    """Write a task's result into its folder (each file atomically, ``done.json`` last); return its stats.

    Runs in the client process, whichever machine ran the task.

    Raises:
        ClusterError: the result is not a complete task result (a worker running another minewatch version).
    """
    from geo.errors import ClusterError
    from geo.fsutil import write_bytes

    if not isinstance(result, dict) or set(result.get("files", ())) != set(TASK_FILES) or "stats" not in result:
        raise ClusterError(f"task {spec.period}/{spec.tile_id} returned no complete result; install the same "
                           "minewatch version on the Dask workers as on this machine")
    out = Path(spec.out_dir)
    (out / "done.json").unlink(missing_ok=True)  # the folder is unfinished until done.json is rewritten
    for name in TASK_FILES:
        write_bytes(out / name, result["files"][name])
    write_json(out / "done.json", result["stats"])
    return result["stats"]

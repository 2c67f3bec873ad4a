"""Run the whole job: AOI → scenes → per-(period, tile) tasks → merged outputs, resumable.

Layout of a run folder::

    manifest.json            inputs, scene ids, versions, parameters, task status
    tasks/<period>/<tile>/   per-task rasters + done.json (written last)
    classmap_<period>.tif    merged class map (0 background, 1 cleared land, 2 pond)
    footprints_<period>.geojson, footprints.gpkg, sites, change.geojson, summary.csv, report.md/html
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import platform
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import box

from geo import __version__
from geo.aoi import Aoi, analysis_grid, read_aoi, reproject_geometry, split_tiles
from geo.config import RunParams
from geo.errors import ClusterError, NoDataError, OutputError, StacError
from geo.run.executor import Progress, run_tasks
from geo.run.runfolder import guard_run_folder, hold_run_folder, record_manifest
from geo.fsutil import remove_partials, write_json
from geo.periods import Period
from geo.run.tasks import TaskSpec, is_done, local_files_state, run_task, write_task_result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What to run.

    Attributes:
        aoi_path: AOI GeoJSON (EPSG:4326 polygons).
        periods: analysis periods, oldest first.
        out_dir: run folder (created; reruns resume in it).
        params: run parameters.
        executor: ``"dask"`` (default) or ``"sync"``.
        workers: Dask LocalCluster workers (default: one per core).
        scheduler: existing Dask scheduler address.
        cache_dir: opt-in cache of fetched windows (:mod:`geo.sources.cache`); None (default): no cache.
        cache_max_bytes: size cap of ``cache_dir`` (default 5 GiB).
    """

    aoi_path: Path
    periods: tuple[Period, ...]
    out_dir: Path
    params: RunParams = field(default_factory=RunParams)
    executor: str = "dask"
    workers: int | None = None
    scheduler: str | None = None
    cache_dir: Path | None = None
    cache_max_bytes: int | None = None


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    summary_csv: Path
    report_md: Path
    report_html: Path
    manifest: Path
    tasks_run: int
    tasks_skipped: int


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_run_dir(out_dir: Path, aoi_hash: str) -> dict | None:
    """Refuse a run folder that holds another AOI's run; return the old manifest (or None)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {out_dir} is a file; give a folder path")
    man = out_dir / "manifest.json"
    if not man.exists():
        return None
    try:
        old = json.loads(man.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or old.get("tool") != "minewatch" or not isinstance(old.get("inputs", {}), dict):
        raise OutputError(f"{man} is not a minewatch run's manifest; give a new or empty --out folder")
    if old.get("inputs", {}).get("aoi_sha256") not in (None, aoi_hash):
        raise OutputError(
            f"{out_dir} holds a run of a different AOI ({old['inputs'].get('aoi_path')}); "
            "choose another --out folder or delete that one"
        )
    return old


def manifest_params(params: RunParams) -> dict:
    """Run parameters for the manifest, with credentials (URL user info, query tokens) removed."""
    from geo.sources.remote import redact

    d = params.to_dict()
    prov = str(d["search"]["provider"])
    if "://" in prov:
        d["search"]["provider"] = redact(prov)
    return d


def _task_like(folder: Path) -> bool:
    """A folder minewatch made for a task: empty, or holding only task rasters, ``done.json``, GDAL side-cars
    and unfinished temporaries. Anything else under ``tasks/`` is the user's and is never deleted."""
    from geo.fsutil import PARTIAL_MARK
    from geo.run.tasks import TASK_FILES

    ok = set(TASK_FILES) | {"done.json"}
    return all(p.is_file() and (p.name in ok or PARTIAL_MARK in p.name or p.name.endswith(".aux.xml"))
               for p in folder.iterdir())


def prune_stale(out: Path, specs: list[TaskSpec]) -> None:
    """Delete task folders the current plan does not hold (another tiling, a period now without scenes),
    so that merging sees only this run's tasks. Called once every task of the plan is done (an interrupted
    rerun with other settings keeps the earlier run's tasks), and only on folders minewatch made
    (:func:`_task_like`): a folder of the user's under ``tasks/`` is left alone."""
    keep = {Path(s.out_dir).resolve() for s in specs}
    root = out / "tasks"
    if not root.is_dir():
        return
    for pdir in root.iterdir():
        if not pdir.is_dir():
            continue
        for tdir in pdir.iterdir():
            if not tdir.is_dir() or tdir.resolve() in keep:
                continue
            if _task_like(tdir):
                log.info("removing task folder %s: not part of this run's plan", tdir)
                shutil.rmtree(tdir, ignore_errors=True)
            else:
                log.warning("leaving %s alone: it is under the run's tasks/ but not a minewatch task folder", tdir)
        if not any(pdir.iterdir()):
            pdir.rmdir()


#: Per-period outputs a run writes into its folder: ``classmap_2023-24.tif`` (+ ``.qml``, ``.tif.aux.xml``), …
_PERIOD_OUTPUT = re.compile(r"^(classmap|confidence|footprints)_(\d{4}-\d{2})\.(tif|tif\.aux\.xml|qml|geojson)$")


def remove_stale_outputs(out: Path, periods: list[str]) -> None:
    """Delete per-period outputs (:data:`_PERIOD_OUTPUT`) of periods this run did not map (dropped from the run,
    or now without scenes), left by an earlier run in the folder, so that the folder, its manifest and
    ``minewatch change`` describe one run."""
    for p in out.iterdir():
        m = _PERIOD_OUTPUT.match(p.name)
        if m and m.group(2) not in periods and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                log.info("removed %s: period not mapped by this run", p.name)


def _check_any_clear(specs: list[TaskSpec], aoi: Aoi, items_by_period: dict[str, list[dict]]) -> None:
    """Raise NoDataError when no task saw a single clear pixel inside the AOI (nothing can be measured)."""
    clear = 0
    for s in specs:
        try:
            clear += int(json.loads((Path(s.out_dir) / "done.json").read_text()).get("clear_px", 0))
        except (OSError, ValueError):
            clear += 1  # an unreadable record is not evidence of an empty archive
    if specs and clear == 0:
        n = sum(len(v) for v in items_by_period.values())
        raise NoDataError(
            f"none of the {n} scene(s) found has a clear, valid pixel inside {aoi.name}: every one is cloud, "
            "nodata or georeferenced outside the AOI; check that the catalogue's rasters cover the AOI, "
            "or add dry seasons with --start/--end"
        )


def _versions() -> dict:
    import numpy
    import rasterio
    import shapely
    out = {"minewatch": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
           "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__, "shapely": shapely.__version__}
    try:  # from the package metadata: importing torch here would cost the client seconds
        out["torch"] = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # torch is a dependency, but the rules path does not need it
        pass
    return out


def _item_touches(item: dict, tile_bbox_ll: tuple[float, float, float, float]) -> bool:
    from geo.sources.stac_local import usable_bbox

    b = usable_bbox(item.get("bbox"))
    if b is None:  # no usable bbox: no evidence that it misses (geo.sources.load checks the geometry again)
        return True
    return not (b[2] < tile_bbox_ll[0] or b[0] > tile_bbox_ll[2] or b[3] < tile_bbox_ll[1] or b[1] > tile_bbox_ll[3])


def plan_tasks(aoi: Aoi, req: RunRequest, items_by_period: dict[str, list[dict]], *,
               weights_sha256: str = "") -> list[TaskSpec]:
    """One task per (period, tile) whose tile has scenes (``weights_sha256`` enters each task's key)."""
    grid = analysis_grid(aoi, resolution=req.params.resolution_m)
    aoi_utm = reproject_geometry(aoi.geometry, CRS.from_epsg(4326), grid.crs)
    to_ll = Transformer.from_crs(grid.crs, 4326, always_xy=True)
    specs = []
    cache = str(req.cache_dir) if req.cache_dir is not None else None
    stats: dict[str, tuple] = {}  # each local asset file statted once
    for tile in split_tiles(grid, tile_px=req.params.tile_px):
        if not box(*tile.grid.bounds).intersects(aoi_utm):
            continue
        bbox_ll = to_ll.transform_bounds(*tile.grid.bounds)
        for p in req.periods:
            items = tuple(i for i in items_by_period.get(p.label, []) if _item_touches(i, bbox_ll))
            if not items:
                continue
            specs.append(TaskSpec(p.label, tile.id, tile.grid.to_dict(), items, aoi_utm.wkt,
                                  str(req.out_dir / "tasks" / p.label / tile.id), req.params, cache,
                                  weights_sha256, req.cache_max_bytes, local_files_state(items, stats)))
    return specs


def check_asset_hrefs(items: list, provider: str, extra_hosts: tuple[str, ...] = ()) -> None:
    """Refuse assets the configured provider does not vouch for, before any byte is read.

    Only the assets a task reads (the stored bands and SCL) are checked. A STAC API's items may point
    only at http(s) hrefs whose host AND port the provider's allowlist permits
    (:func:`geo.sources.providers.asset_allowlist`: the API's own host:port, the profile's asset hosts, a
    leading ``.`` matching sub-domains, default ports 80/443); a local ItemCollection at local files or
    http(s). Other schemes (``s3://``, ``ftp://``, ``file://`` from a remote API) are refused. ``extra_hosts``
    (config ``[search] asset_hosts``, ``host`` or ``host:port``) adds hosts the user vouches for.

    Raises:
        StacError: naming the item, the asset and the host, and what to check.
    """
    from urllib.parse import urlsplit

    from geo.sources.assets import asset_for
    from geo.sources.providers import asset_allowlist, resolve_provider
    from geo.sources.remote import origin, redact
    from geo.run.tasks import STORED_BANDS

    prov = resolve_provider(provider)
    local = prov.local_path is not None
    allow = asset_allowlist(prov, extra_hosts)
    for it in items:
        for band in (*STORED_BANDS, "SCL"):
            key, asset = asset_for(it, band, prov.asset_keys)
            href = str(asset.href)
            scheme = urlsplit(href).scheme.lower()
            if local and (scheme in ("", "file", "http", "https") or (len(scheme) == 1 and href[1:2] == ":")):
                continue
            if allow.permits(href):
                continue
            _s, host, port = origin(href)
            where = f"host {host!r}, port {port}" if scheme in ("http", "https") else \
                f"scheme {scheme or 'local file'!r}"
            raise StacError(
                f"item {it.id!r} asset {key!r} points at {redact(href)} ({where}), which provider "
                f"{prov.name} does not serve; minewatch reads only http(s) assets from "
                f"{allow.describe()} — check the --stac-url catalogue (or add a host you trust, as host:port, "
                "to [search] asset_hosts)"
            )


def search_all(aoi: Aoi, req: RunRequest) -> dict[str, list[dict]]:
    """Scenes per period (as item dicts), their asset hrefs checked with :func:`check_asset_hrefs`."""
    from geo.sources.stac import search

    found = {}
    for p in req.periods:
        items = search(aoi, p, provider=req.params.search.provider, max_cloud=req.params.search.max_cloud,
                       collection=req.params.search.collection or None)
        log.info("period %s: %d scenes", p.label, len(items))
        check_asset_hrefs(items, req.params.search.provider, req.params.search.asset_hosts)
        found[p.label] = [i.to_dict(transform_hrefs=False) for i in items]
    if not any(found.values()):
        raise NoDataError(
            f"no Sentinel-2 scenes found for {aoi.name} in {req.periods[0].label}…{req.periods[-1].label} "
            f"under {req.params.search.max_cloud:.0f}% cloud; raise --max-cloud or check the provider/AOI"
        )
    return found


def check_weights(params: RunParams) -> dict | None:
    """The run's model weights checked before any network access (``None`` for ``method = "rules"``).

    Raises:
        WeightsError: missing, corrupt, unsafe or card-mismatched weights, or an unavailable device.
    """
    if params.detect.method == "rules":
        return None
    from models.infer import describe_weights

    return describe_weights(params.detect.weights or None, device=params.detect.device)


@guard_run_folder
def run(req: RunRequest, *, progress: Progress | None = None) -> RunResult:
    """Run (or resume) the job described by ``req``; returns where the outputs are."""
    from geo.results.outputs import build_outputs, is_simulated

    started = dt.datetime.now(dt.timezone.utc)
    aoi = read_aoi(req.aoi_path)
    aoi_hash = _sha256(Path(req.aoi_path))
    weights = check_weights(req.params)  # before the run folder and any search: exit 5, nothing fetched
    out = Path(req.out_dir)
    old = check_run_dir(out, aoi_hash)
    old_sha = ((old or {}).get("weights") or {}).get("sha256")
    if old_sha and weights and old_sha != weights["sha256"]:
        log.warning("the model weights differ from the last run in %s (sha256 %s… → %s…, %s): every model task reruns",
                    out, old_sha[:12], weights["sha256"][:12], weights["path"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create run folder {out} ({exc.strerror}); choose a writable --out") from None
    hold_run_folder(out)  # refuses a folder another run is writing into; released by @guard_run_folder
    for folder in (out, req.cache_dir):  # temporaries of a killed run are never finished, only redone
        if folder is not None and (n := remove_partials(folder)):
            log.info("removed %d unfinished temporary file(s) left in %s by an interrupted run", n, folder)
    manifest = {
        "tool": "minewatch", "status": "running", "started": started.isoformat(),
        "inputs": {"aoi_path": str(req.aoi_path), "aoi_sha256": aoi_hash, "aoi_name": aoi.name,
                   "aoi_area_km2": round(aoi.area_km2(), 3), "periods": [p.label for p in req.periods],
                   "period_dates": {p.label: [p.start.isoformat(), p.end.isoformat()] for p in req.periods}},
        "parameters": manifest_params(req.params), "versions": _versions(), "weights": weights,
    }
    write_json(out / "manifest.json", manifest)
    record_manifest(out / "manifest.json", manifest)  # marked "failed" by @guard_run_folder if the run stops
    items_by_period = search_all(aoi, req)
    manifest["scenes"] = {k: sorted(i["id"] for i in v) for k, v in items_by_period.items()}
    manifest["simulated"] = is_simulated(items_by_period)  # any item marked minewatch:simulated/synthetic
    specs = plan_tasks(aoi, req, items_by_period, weights_sha256=weights["sha256"] if weights else "")
    todo = [s for s in specs if not is_done(s)]
    log.info("%d tasks: %d to run, %d already done", len(specs), len(todo), len(specs) - len(todo))
    manifest["tasks"] = {"total": len(specs), "run": len(todo), "skipped": len(specs) - len(todo)}
    write_json(out / "manifest.json", manifest)
    # results come back to this process (through Dask on a cluster) and are written here: workers need not see `out`
    run_tasks(run_task, todo, executor=req.executor, workers=req.workers, scheduler=req.scheduler, progress=progress,
              on_result=write_task_result)
    if missing := [s for s in todo if not is_done(s)]:  # never report from a run folder the tasks did not fill
        raise ClusterError(f"{len(missing)} of {len(todo)} task(s) delivered no result (first: {missing[0].period}/"
                           f"{missing[0].tile_id}); check the Dask workers and rerun to resume")
    prune_stale(out, specs)  # only now: a rerun with other settings stopped part-way keeps the earlier tasks
    _check_any_clear(specs, aoi, items_by_period)
    remove_stale_outputs(out, [p.label for p in req.periods if (out / "tasks" / p.label).is_dir()])
    paths = build_outputs(out, aoi, req, items_by_period)
    manifest["model_checks"] = paths["model_checks"]  # docs/MODEL_CHECKS.md
    manifest["status"] = "complete"
    manifest["finished"] = dt.datetime.now(dt.timezone.utc).isoformat()
    manifest["outputs"] = sorted(str(p.relative_to(out)) for p in out.iterdir() if p.is_file() and p.name != "manifest.json"
                                 and not p.name.startswith("."))
    write_json(out / "manifest.json", manifest)
    return RunResult(out, paths["summary_csv"], paths["report_md"], paths["report_html"], out / "manifest.json",
                     len(todo), len(specs) - len(todo))

"""Training images declared as STAC searches: ``[[scenes]]`` in a training TOML (see :func:`models.train_job.load_job`).

A scene is a search (catalogue, datetime interval, bbox or AOI file, cloud limit) plus labels. It becomes one
training sample exactly the way ``minewatch run`` builds a season's composite, by calling the pipeline's own
functions: :func:`geo.sources.stac.search`, :func:`geo.run.pipeline.check_asset_hrefs`, :func:`geo.aoi.analysis_grid`
and its tiles (:func:`geo.run.pipeline.plan_tasks`), and per tile, with the run's halo of context,
:func:`geo.run.tasks.composite_for` (:func:`geo.sources.load.load_stack` → SCL mask :func:`geo.stages.cloud.scl_clear_mask` →
:func:`geo.stages.composite.median_composite`). On the same grid the composite equals the ``composite.tif`` a run
stores, pixel for pixel (before the run's rounding to DN).
The labels are burnt onto that 10 m UTM grid by :func:`models.data.rasterize_labels`, as for ``[[images]]``;
pixels outside the AOI or without a single clear observation are set to 255 (ignored by the loss).

The composite is cached as ``<cache_dir>/scene-<key>.npz`` (written atomically), keyed by everything that
shapes it: the catalogue (URL without credentials, profile name, or a local file with its size and mtime), the
collection, the interval, the area, ``max_cloud``/``limit``, the grid, the bands, the halo and the cloud mask.
A rerun of the same config therefore neither searches nor reads a byte; delete the file to refetch (for instance
after the archive was reprocessed). While a composite is built, fetched windows are kept under
``<cache_dir>/windows-<key>/`` so an interrupted build resumes; they are deleted once the composite is saved.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from shapely.geometry import box

from geo.aoi import Aoi, analysis_grid, read_aoi, reproject_geometry
from geo.sources.cache import cache_key
from geo.config import RunParams
from geo.errors import AoiError, ConfigError, NoDataError
from geo.grid import GeoGrid
from geo.sources.remote import redact
from geo.stack import Composite
from geo.run.tasks import STORED_BANDS
from models.labels import IGNORE, burn_labels
from models.scene_config import StacScene

log = logging.getLogger(__name__)

#: Largest area of one training scene (km²); a 10 m composite of 1,000 km² is 10 Mpx (≈ 240 MB in memory).
MAX_SCENE_KM2 = 1000.0
#: Bump when the meaning of a cached composite changes.
CACHE_FORMAT = 1
CLASS_NAMES = {0: "background", 1: "cleared_land", 2: "leaching_pond"}

# -- offline preparation: area, grid, labels --------------------------------------------------------

@dataclass(frozen=True)
class PreparedScene:
    """A scene with its area, grid and rasterised labels, before any network access.

    Attributes:
        scene: the config entry. where: its name in messages. aoi: the search area.
        grid: the 10 m UTM analysis grid. region: bool ``(y, x)``, True inside the area.
        labels: uint8 ``(y, x)`` as burnt by :func:`models.data.rasterize_labels`, 255 where no label covers.
        key: cache key of the composite.
    """

    scene: StacScene
    where: str
    aoi: Aoi
    grid: GeoGrid
    region: np.ndarray
    labels: np.ndarray
    key: str


def scene_area(scene: StacScene, where: str) -> Aoi:
    """The search area as an :class:`~geo.aoi.Aoi` (read with :func:`geo.aoi.read_aoi`, or the bbox)."""
    if scene.aoi is not None:
        try:
            aoi = read_aoi(scene.aoi)
        except AoiError as exc:
            raise AoiError(f"{where}.aoi: {exc}") from None
    else:
        w, s, e, n = scene.bbox
        geom = box(w, s, e, n)
        aoi = Aoi(name=f"bbox {w:g},{s:g},{e:g},{n:g}", geometry=geom, properties={})  # check_bbox: w < e, s < n
    km2 = aoi.area_km2()
    if km2 > MAX_SCENE_KM2:
        raise ConfigError(f"{where}: the area covers {km2:,.0f} km², over the {MAX_SCENE_KM2:,.0f} km² limit of one "
                          "training scene; split it into several [[scenes]] around the labels")
    return aoi


def _source_stamp(scene: StacScene) -> dict:
    prov = scene.provider()
    if prov.local_path is not None:
        try:
            st = prov.local_path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        return {"file": str(prov.local_path), "stamp": stamp}
    return {"url": redact(prov.url).rstrip("/"), "collection": prov.collection}


def prepare(scene: StacScene, where: str, params: RunParams = RunParams()) -> PreparedScene:
    """Area, grid and labels of ``scene`` (no network); refuses labels that miss the area.

    Raises:
        AoiError: unusable AOI file. ConfigError: area too large, no label, or no label inside it (labels partly
            outside are logged as a warning: :func:`models.labels.burn_labels`).
        RasterError / CrsError: unreadable labels, unknown class, labels without CRS.
    """
    from geo.aoi import region_mask

    aoi = scene_area(scene, where)
    grid = analysis_grid(aoi, resolution=params.resolution_m)
    area = reproject_geometry(aoi.geometry, CRS.from_epsg(4326), grid.crs)
    region = region_mask(area.wkt, grid)
    desc = "the scene's area (" + (
        aoi.name if scene.aoi is None else f"{scene.aoi}, lon/lat {', '.join(f'{v:.4f}' for v in aoi.bbox)}") + ")"
    raw = burn_labels(scene.labels, grid, where=where, area_desc=desc, fix="the bbox/aoi",
                      point_radius_m=scene.point_radius_m, area=area, region=region, report_crs=CRS.from_epsg(4326))
    return PreparedScene(scene, where, aoi, grid, region, raw, _key(scene, aoi, grid, params))


def _key(scene: StacScene, aoi: Aoi, grid: GeoGrid, params: RunParams) -> str:
    cloud = params.cloud
    return cache_key(kind="training-scene", format=CACHE_FORMAT, source=_source_stamp(scene),
                     interval=scene.period.interval, area=aoi.geometry.wkt, max_cloud=scene.max_cloud,
                     limit=scene.limit, grid=grid.to_dict(), bands=list(STORED_BANDS), halo_px=params.detect.halo_px,
                     cloud={"clear_classes": sorted(cloud.clear_classes), "buffer_px": cloud.buffer_px})


def prepare_area(scene: StacScene, where: str, params: RunParams = RunParams()) -> PreparedScene:
    """As :func:`prepare` without burning labels (``labels`` all 255): the area, grid, region and cache key of a
    search whose composite is scored rather than trained on (``minewatch evaluate --stac``; same cache)."""
    from geo.aoi import region_mask

    aoi = scene_area(scene, where)
    grid = analysis_grid(aoi, resolution=params.resolution_m)
    region = region_mask(reproject_geometry(aoi.geometry, CRS.from_epsg(4326), grid.crs).wkt, grid)
    return PreparedScene(scene, where, aoi, grid, region, np.full(grid.shape, IGNORE, np.uint8),
                         _key(scene, aoi, grid, params))


# -- composite: search → load → mask → median (the pipeline's code), cached -------------------------

def cache_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"scene-{key}.npz"


def _read_cache(path: Path, prep: PreparedScene) -> tuple[Composite, dict] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data, count, meta = z["data"], z["clear_count"], json.loads(str(z["meta"]))
        ok = (meta.get("key") == prep.key and tuple(meta.get("bands", ())) == STORED_BANDS
              and data.shape == (len(STORED_BANDS), *prep.grid.shape) and count.shape == prep.grid.shape)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("%s: cached composite %s is unreadable (%s); building it again", prep.where, path.name, exc)
        ok = False
    if not ok:
        path.unlink(missing_ok=True)
        return None
    return Composite(data.astype(np.float32, copy=False), count.astype(np.uint16, copy=False), STORED_BANDS,
                     prep.grid), meta


def _write_cache(path: Path, comp: Composite, meta: dict) -> None:
    from geo.fsutil import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, data=comp.data, clear_count=comp.clear_count, meta=np.array(json.dumps(meta)))


def build_composite(prep: PreparedScene, windows_dir: Path,
                    params: RunParams = RunParams()) -> tuple[Composite, list[str]]:
    """Search the scene's items and composite them on its grid, tile by tile, as ``minewatch run`` does.

    Returns:
        The composite on ``prep.grid`` and the ids of the items that went into it.

    Raises:
        StacError: catalogue unreachable, unknown collection, untrusted asset hosts.
        NoDataError: no items, or not one clear, valid pixel.
        RasterError: unreadable assets or missing reflectance metadata.
    """
    from geo.run.pipeline import RunRequest, check_asset_hrefs, plan_tasks
    from geo.sources.stac import search
    from geo.run.tasks import _pad, composite_for

    sc, period = prep.scene, prep.scene.period
    prov = sc.provider()
    items = search(prep.aoi, period, provider=prov, max_cloud=sc.max_cloud, limit=sc.limit)
    if not items:
        raise NoDataError(
            f"{prep.where}: no Sentinel-2 scenes found in {sc.source} (collection {prov.collection}) for "
            f"{period.start}/{period.end} over {prep.aoi.name} under {sc.max_cloud:g}% cloud; widen datetime, "
            "raise max_cloud or check the bbox/aoi"
        )
    check_asset_hrefs(items, prov, sc.asset_hosts)
    log.info("%s: %d scene(s) from %s for %s", prep.where, len(items), sc.source, sc.datetime)
    req = RunRequest(aoi_path=sc.aoi or Path(prep.aoi.name), periods=(period,), out_dir=windows_dir,
                     params=params, cache_dir=windows_dir)
    specs = plan_tasks(prep.aoi, req, {period.label: [it.to_dict(transform_hrefs=False) for it in items]})
    grid = prep.grid
    data = np.full((len(STORED_BANDS), *grid.shape), np.nan, np.float32)
    count = np.zeros(grid.shape, np.uint16)
    halo = params.detect.halo_px  # as run_task: tiles load with context, so the SCL buffer crosses tile edges
    for spec in specs:
        tile = GeoGrid.from_dict(spec.grid)
        comp, _ = composite_for(spec, _pad(tile, halo))
        inner = (slice(halo, halo + tile.height), slice(halo, halo + tile.width))
        col = int(round((tile.transform.c - grid.transform.c) / grid.transform.a))
        row = int(round((tile.transform.f - grid.transform.f) / grid.transform.e))
        data[:, row:row + tile.height, col:col + tile.width] = comp.data[(slice(None), *inner)]
        count[row:row + tile.height, col:col + tile.width] = comp.clear_count[inner]
    if not (count > 0).any():
        raise NoDataError(
            f"{prep.where}: none of the {len(items)} scene(s) found has a clear, valid pixel over {prep.aoi.name} "
            "(all cloud or nodata); widen datetime or choose another period"
        )
    return Composite(data, count, STORED_BANDS, grid), [it.id for it in items]


def scene_composite(prep: PreparedScene, cache_dir: Path,
                    params: RunParams = RunParams()) -> tuple[Composite, dict, bool]:
    """The scene's composite from the cache, or built and cached; returns ``(composite, meta, cache_hit)``."""
    path = cache_path(cache_dir, prep.key)
    hit = _read_cache(path, prep)
    if hit is not None:
        log.info("%s: composite cache hit %s (%d scene(s)); nothing fetched", prep.where, path,
                 len(hit[1].get("items", [])))
        return hit[0], hit[1], True
    windows = Path(cache_dir) / f"windows-{prep.key[:16]}"
    comp, ids = build_composite(prep, windows, params)
    meta = {"format": CACHE_FORMAT, "key": prep.key, "stac": prep.scene.source,
            "collection": prep.scene.provider().collection, "datetime": prep.scene.datetime,
            "interval": prep.scene.period.interval, "area": prep.aoi.name, "items": ids,
            "grid": prep.grid.to_dict(), "bands": list(STORED_BANDS),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    _write_cache(path, comp, meta)
    shutil.rmtree(windows, ignore_errors=True)  # the composite holds everything they were fetched for
    log.info("%s: composite cached at %s", prep.where, path)
    return comp, meta, False


def scene_sample(prep: PreparedScene, comp: Composite) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(x, y, record)``: reflectance in ANALYSIS_BANDS order, labels, and pixel counts for the model card.

    Pixels outside the area or without a clear observation become 255 (ignored by the loss).

    Raises:
        NoDataError: every labelled pixel lies where no scene had a clear observation.
    """
    from geo.bands import ANALYSIS_BANDS

    if tuple(comp.bands) != tuple(ANALYSIS_BANDS):
        x = np.stack([comp.band(b) for b in ANALYSIS_BANDS])
    else:
        x = comp.data
    usable = prep.region & (comp.clear_count > 0)
    covered = prep.labels != IGNORE
    if not (covered & usable).any():
        raise NoDataError(
            f"{prep.where}: every labelled pixel of {prep.scene.labels} lies where no scene of {prep.scene.datetime} "
            "has a clear observation (cloud or nodata); widen datetime or raise max_cloud"
        )
    y = np.where(covered, prep.labels, np.uint8(prep.scene.unlabelled)).astype(np.uint8)
    y[~usable] = IGNORE
    record = {
        "labelled_px": {name: int((y == k).sum()) for k, name in CLASS_NAMES.items()},
        "ignored_px": int((y == IGNORE).sum()),
        "labels_without_clear_px": int((covered & prep.region & ~usable).sum()),
    }
    return np.ascontiguousarray(x, np.float32), y, record


def scene_samples(scenes: tuple[StacScene, ...], cache_dir: Path, *, where: str = "scenes",
                  params: RunParams = RunParams()) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """Every scene as ``(x, y, card record)``; all offline checks run before the first search."""
    from geo.fsutil import check_writable, remove_partials

    preps = [prepare(s, f"{where}[{i}]", params) for i, s in enumerate(scenes)]
    if preps:
        check_writable(cache_dir, "cache_dir", folder=True)  # before any search
    if preps and (n := remove_partials(cache_dir)):
        log.info("removed %d unfinished temporary file(s) left in %s by an interrupted run", n, cache_dir)
    out = []
    for prep in preps:
        comp, meta, _hit = scene_composite(prep, cache_dir, params)
        x, y, counts = scene_sample(prep, comp)
        sc = prep.scene
        record = {"stac": meta.get("stac", sc.source), "collection": meta.get("collection"), "datetime": sc.datetime,
                  "bbox": list(sc.bbox) if sc.bbox else None, "aoi": str(sc.aoi) if sc.aoi else None,
                  "max_cloud": sc.max_cloud, "items": list(meta.get("items", [])), "grid": prep.grid.to_dict(),
                  "labels": str(sc.labels), "point_radius_m": sc.point_radius_m,
                  "unlabelled": "ignore" if sc.unlabelled == IGNORE else "background", **counts}
        log.info("%s: %d x %d px, labelled px %s, %d ignored", prep.where, prep.grid.width, prep.grid.height,
                 counts["labelled_px"], counts["ignored_px"])
        out.append((x, y, record))
    return out

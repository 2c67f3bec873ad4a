"""Training images declared as STAC searches: ``[[scenes]]`` in a training TOML (see :func:`models.train_job.load_job`).

A scene is a search (catalogue, datetime interval, bbox or AOI file, cloud limit) plus labels. It becomes one
training sample exactly the way ``minewatch run`` builds a season's composite, by calling the pipeline's own
functions: :func:`geo.stac.search`, :func:`geo.pipeline.check_asset_hrefs`, :func:`geo.aoi.analysis_grid`
and its tiles (:func:`geo.pipeline.plan_tasks`), and per tile, with the run's halo of context,
:func:`geo.tasks.composite_for` (:func:`geo.load.load_stack` → SCL mask :func:`geo.cloud.scl_clear_mask` →
:func:`geo.composite.median_composite`). On the same grid the composite equals the ``composite.tif`` a run
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

import dataclasses
import datetime as dt
import json
import logging
import math
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from rasterio.crs import CRS
from shapely.geometry import box

from geo.aoi import Aoi, analysis_grid, read_aoi, reproject_geometry
from geo.cache import cache_key
from geo.config import RunParams
from geo.errors import AoiError, ConfigError, NoDataError, PeriodError, StacError
from geo.grid import GeoGrid
from geo.periods import Period, parse_interval
from geo.providers import PROVIDERS, Provider, resolve_provider
from geo.remote import redact
from geo.stack import Composite
from geo.tasks import STORED_BANDS
from models.labels import LABELS_FIX, burn_labels, existing_file

log = logging.getLogger(__name__)

#: Largest area of one training scene (km²); a 10 m composite of 1,000 km² is 10 Mpx (≈ 240 MB in memory).
MAX_SCENE_KM2 = 1000.0
#: Bump when the meaning of a cached composite changes.
CACHE_FORMAT = 1
#: Keys a ``[[scenes]]`` table may hold.
SCENE_KEYS = ("stac", "collection", "datetime", "bbox", "aoi", "max_cloud", "limit", "asset_hosts", "labels",
              "point_radius_m", "unlabelled")
CLASS_NAMES = {0: "background", 1: "cleared_land", 2: "leaching_pond"}
IGNORE = 255


@dataclass(frozen=True)
class StacScene:
    """One ``[[scenes]]`` entry: a STAC search whose composite is a training image.

    Attributes:
        stac: ``earth-search``, ``planetary-computer``, an http(s) STAC API URL or a local ItemCollection
            JSON path (anything :func:`geo.stac.search` accepts; a relative path is already resolved).
        datetime: ``START/END`` ISO dates, the compositing period (inclusive).
        labels: GeoJSON/GPKG of polygons or points with a ``class`` property.
        bbox: ``(west, south, east, north)`` in degrees (EPSG:4326), or ``None`` when ``aoi`` is given.
        aoi: AOI GeoJSON file (EPSG:4326 polygons), or ``None`` when ``bbox`` is given.
        collection: collection id to search (default: the provider's, ``sentinel-2-l2a``).
        max_cloud: largest scene cloud cover kept, percent.
        limit: keep at most this many scenes (the least cloudy); ``None`` for all.
        asset_hosts: extra hosts whose asset hrefs may be read (as ``[search] asset_hosts`` of a run).
        point_radius_m: radius (m) that turns point labels into discs.
        unlabelled: value of pixels outside every label: 0 (background) or 255 (ignored by the loss).
    """

    stac: str
    datetime: str
    labels: Path
    bbox: tuple[float, float, float, float] | None = None
    aoi: Path | None = None
    collection: str | None = None
    max_cloud: float = 80.0
    limit: int | None = None
    asset_hosts: tuple[str, ...] = ()
    point_radius_m: float = 20.0
    unlabelled: int = 0

    @property
    def period(self) -> Period:
        return parse_interval(self.datetime)

    def provider(self) -> Provider:
        """The :class:`~geo.providers.Provider` to search, with ``collection`` applied."""
        prov = resolve_provider(self.stac)
        return dataclasses.replace(prov, collection=self.collection) if self.collection else prov

    @property
    def source(self) -> str:
        """The catalogue as recorded in model cards and logs: a URL never carries credentials."""
        if self.stac in PROVIDERS:
            return f"{self.stac} ({PROVIDERS[self.stac].url})"
        return redact(self.stac).rstrip("/") if "://" in self.stac else self.stac


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{what} must be a number, got {v!r}")
    return float(v)


def check_bbox(v, where: str) -> tuple[float, float, float, float]:
    """Validate ``[west, south, east, north]`` in degrees; returns it as floats.

    Raises:
        ConfigError: not four numbers, outside longitude/latitude ranges, empty, or crossing the antimeridian.
    """
    fix = "write bbox = [west, south, east, north] in degrees (EPSG:4326), e.g. [97.80, 25.60, 97.84, 25.64]"
    if not isinstance(v, (list, tuple)) or len(v) != 4:
        raise ConfigError(f"{where}.bbox must be 4 numbers, got {v!r}; {fix}")
    w, s, e, n = (_number(x, f"{where}.bbox") for x in v)
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise ConfigError(f"{where}.bbox {list(v)} lies outside longitude/latitude ranges "
                          f"(projected coordinates?); {fix}")
    if w >= e or s >= n:
        raise ConfigError(f"{where}.bbox {list(v)} has west >= east or south >= north "
                          f"(an antimeridian crossing must be split into two scenes); {fix}")
    if n > 84 or s < -80:
        raise ConfigError(f"{where}.bbox {list(v)} reaches outside UTM/Sentinel-2 analysis coverage (80°S–84°N)")
    return (w, s, e, n)


def parse_scene(table: dict, where: str, rel: Callable[[str], Path]) -> StacScene:
    """Build a :class:`StacScene` from one TOML table; every value is checked here, before any network access.

    Args:
        table: the ``[[scenes]]`` table.
        where: its name in messages (``"file.toml: scenes[0]"``).
        rel: resolves a path relative to the TOML file.

    Raises:
        ConfigError: unknown/missing keys, wrong types, bbox and aoi both or neither, bad values.
        PeriodError: a malformed ``datetime``.
        StacError: a ``stac`` value that is no provider, URL or path.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([[scenes]]), got {table!r}")
    unknown = sorted(set(table) - set(SCENE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {list(SCENE_KEYS)}")
    missing = [k for k in ("stac", "datetime", "labels") if k not in table]
    if missing:
        raise ConfigError(f"{where} needs stac, datetime and labels (missing: {', '.join(missing)})")
    for k in ("stac", "datetime", "labels", "aoi", "collection"):
        if k in table and (not isinstance(table[k], str) or not table[k].strip()):
            raise ConfigError(f"{where}.{k} must be a non-empty string, got {table[k]!r}")
    has_bbox, has_aoi = "bbox" in table, "aoi" in table
    if has_bbox and has_aoi:
        raise ConfigError(f"{where} gives both bbox and aoi; keep one of them")
    if not (has_bbox or has_aoi):
        raise ConfigError(f"{where} needs the area to search: "
                          'bbox = [west, south, east, north] or aoi = "file.geojson"')
    try:
        parse_interval(table["datetime"])
    except PeriodError as exc:
        raise PeriodError(f"{where}.datetime: {exc}") from None
    stac = table["stac"].strip()
    if stac not in PROVIDERS and "://" not in stac:
        stac = str(rel(stac))  # a local ItemCollection, relative to the TOML file
    try:
        resolve_provider(stac)  # refuses unknown schemes/names now
    except StacError as exc:
        raise StacError(f"{where}.stac: {exc}") from None
    labels = existing_file(rel(table["labels"]), f"{where}.labels", LABELS_FIX)
    aoi = None
    if has_aoi:
        aoi = rel(table["aoi"])
    bbox = check_bbox(table["bbox"], where) if has_bbox else None
    max_cloud = _number(table.get("max_cloud", 80.0), f"{where}.max_cloud")
    if not 0 <= max_cloud <= 100:
        raise ConfigError(f"{where}.max_cloud is a percentage (0–100), got {max_cloud:g}")
    limit = table.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{where}.limit must be a whole number >= 1, got {limit!r}")
    hosts = table.get("asset_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(f"{where}.asset_hosts must be a list of host names, got {hosts!r}")
    radius = _number(table.get("point_radius_m", 20.0), f"{where}.point_radius_m")
    if radius <= 0:
        raise ConfigError(f"{where}.point_radius_m must be > 0, got {radius:g}")
    unl = {"background": 0, "ignore": IGNORE}.get(str(table.get("unlabelled", "background")))
    if unl is None:
        raise ConfigError(f"{where}.unlabelled must be 'background' or 'ignore'")
    return StacScene(stac=stac, datetime=table["datetime"].strip(), labels=labels, bbox=bbox, aoi=aoi,
                     collection=table.get("collection"), max_cloud=max_cloud, limit=limit, asset_hosts=tuple(hosts),
                     point_radius_m=radius, unlabelled=unl)


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
    from geo.tasks import region_mask

    aoi = scene_area(scene, where)
    grid = analysis_grid(aoi, resolution=params.resolution_m)
    area = reproject_geometry(aoi.geometry, CRS.from_epsg(4326), grid.crs)
    region = region_mask(area.wkt, grid)
    desc = "the scene's area (" + (
        aoi.name if scene.aoi is None else f"{scene.aoi}, lon/lat {', '.join(f'{v:.4f}' for v in aoi.bbox)}") + ")"
    raw = burn_labels(scene.labels, grid, where=where, area_desc=desc, fix="the bbox/aoi",
                      point_radius_m=scene.point_radius_m, area=area, region=region, report_crs=CRS.from_epsg(4326))
    cloud = params.cloud
    key = cache_key(kind="training-scene", format=CACHE_FORMAT, source=_source_stamp(scene),
                    interval=scene.period.interval, area=aoi.geometry.wkt, max_cloud=scene.max_cloud,
                    limit=scene.limit, grid=grid.to_dict(), bands=list(STORED_BANDS), halo_px=params.detect.halo_px,
                    cloud={"clear_classes": sorted(cloud.clear_classes), "buffer_px": cloud.buffer_px})
    return PreparedScene(scene, where, aoi, grid, region, raw, key)


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
    from geo.pipeline import RunRequest, check_asset_hrefs, plan_tasks
    from geo.stac import search
    from geo.tasks import _pad, composite_for

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
    from geo.fsutil import remove_partials

    preps = [prepare(s, f"{where}[{i}]", params) for i, s in enumerate(scenes)]
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

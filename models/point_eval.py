"""A real-label check for online users: score the detector at point labels over scenes found through any STAC API.

``minewatch evaluate --stac earth-search --datetime 2023-11-01/2024-04-30 --pools pools.csv --negatives neg.geojson
--reference predictions.geojson`` searches the period over the points' area (or ``--bbox``/``--aoi``), composites it
with the pipeline's own code (:func:`models.stac_scenes.scene_composite`: search → SCL mask → median, cached like a
training scene), runs the detector (:func:`geo.stages.detect.classify`) and reports, per point file:

* **pool points** (positives): recall — the share of points with a clear observation where a leaching pond (and,
  separately, any footprint: pond or cleared land) is detected within ``radius_m``;
* **negatives**: the false-positive rate — the share of observed points with a footprint detected within ``radius_m``;
* a **reference prediction layer** (polygons, e.g. the Earth Genome Sentinel-2 detections): the share of its
  polygons in the area that hold a detected footprint pixel, and the pixel agreement (IoU, and both one-sided shares)
  of the detected footprint with the polygons' area, over clear pixels of the area.

Points are read from a CSV (``x``/``y``, ``lon``/``lat`` or ``longitude``/``latitude`` columns, or ``xy_cols``;
EPSG:4326 unless ``points_crs``) or any vector file of points with a CRS. Every bad input is one
:class:`geo.errors.MinewatchError` raised before any network access (docs/ERRORS.md 101–110).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geo.errors import ConfigError, CrsError, NoDataError, PeriodError, RasterError, UsageError
from models.vector_source import source_name

log = logging.getLogger(__name__)

POINTS_FIX = "give a CSV with x/y (or lon/lat) columns in EPSG:4326, or a GeoJSON/GPKG of points"
XY_PAIRS = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"))
ROLES = ("pool", "negative")


@dataclass(frozen=True)
class PointSet:
    """One file of point labels: ``role`` ``"pool"`` (a leaching pool, expected detected) or ``"negative"``
    (no mining, expected not detected); ``points`` a GeoDataFrame of points in EPSG:4326."""

    name: str
    role: str
    path: Path
    points: object


def _lonlat_check(gdf, path: Path, fix: str) -> None:
    w, s, e, n = gdf.total_bounds
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        if -90 <= w <= 90 and -90 <= e <= 90 and -180 <= s <= 180 and -180 <= n <= 180:
            raise CrsError(f"points {path} have coordinates outside longitude/latitude range ({w:.0f}, {s:.0f}, "
                           f"{e:.0f}, {n:.0f}) that look swapped: the x column holds latitudes; name the columns "
                           "the other way round (or --xy-cols LON,LAT)")
        raise CrsError(f"points {path} have coordinates outside longitude/latitude range ({w:.0f}, {s:.0f}, {e:.0f}, "
                       f"{n:.0f}) but their CRS is {gdf.crs.to_string()}: they look projected; {fix}")


def read_points(path: Path, role: str, *, xy_cols: tuple[str, str] | None = None,
                points_crs: str | None = None) -> PointSet:
    """Read a point-label file into EPSG:4326 points.

    Raises:
        ConfigError: missing file. UsageError: no coordinate columns (naming those found), non-numeric
            coordinates, no points, geometries that are not points. RasterError: unreadable file.
        CrsError: no CRS, coordinates that look projected in a geographic CRS, an unknown ``points_crs``.
    """
    import geopandas as gpd
    import pandas as pd
    from pyproj import CRS as PCRS
    from pyproj.exceptions import CRSError

    from models.labels import existing_file, read_vector

    path = existing_file(Path(path), f"--{'pools' if role == 'pool' else 'negatives'}", POINTS_FIX)
    try:
        crs = PCRS.from_user_input(points_crs) if points_crs else None
    except CRSError as exc:
        raise CrsError(f"--points-crs {points_crs!r} is no CRS ({exc}); write it like EPSG:32647") from None
    if path.suffix.lower() in (".csv", ".txt"):
        try:
            df = pd.read_csv(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise RasterError(f"cannot read points {path} ({' '.join(str(exc).split())[:200]}); {POINTS_FIX}") from None
        cols = {c.lower().strip(): c for c in df.columns}
        pair = None
        if xy_cols:
            missing = [c for c in xy_cols if c.lower() not in cols]
            if missing:
                raise UsageError(f"points {path} have no column(s) {', '.join(missing)} (columns: "
                                 f"{', '.join(map(str, df.columns))}); fix --xy-cols")
            pair = tuple(cols[c.lower()] for c in xy_cols)
        else:
            pairs = [tuple(cols[c] for c in p) for p in XY_PAIRS if all(c in cols for c in p)]
            if len(pairs) > 1:  # x,y next to lon,lat: which one is meant is a guess, and a wrong guess moves points
                raise UsageError(f"points {path} have several coordinate column pairs ("
                                 f"{', '.join('/'.join(map(str, p_)) for p_ in pairs)}); say which with --xy-cols X,Y")
            pair = pairs[0] if pairs else None
        if pair is None:
            raise UsageError(f"points {path} have no coordinate columns (columns: {', '.join(map(str, df.columns))}); "
                             "name them x/y or lon/lat, or pass --xy-cols X,Y")
        try:
            xs, ys = (pd.to_numeric(df[c], errors="raise").to_numpy(float) for c in pair)
        except (ValueError, TypeError):
            raise UsageError(f"points {path}: columns {pair[0]}/{pair[1]} hold values that are not numbers; "
                             "fix --xy-cols or the file") from None
        ok = np.isfinite(xs) & np.isfinite(ys)
        if not ok.all():  # a blank or NaN coordinate is a broken row, not a point to leave out quietly
            bad = np.flatnonzero(~ok)
            raise UsageError(f"points {path}: {bad.size} row(s) have a blank, NaN or infinite coordinate in "
                             f"{pair[0]}/{pair[1]} (first: data row {bad[0] + 1}); fix or delete them")
        gdf = gpd.GeoDataFrame(df[ok].reset_index(drop=True), geometry=gpd.points_from_xy(xs[ok], ys[ok]),
                               crs=crs or "EPSG:4326")
        fix = "pass --points-crs (e.g. EPSG:32647) for projected x/y, or give lon/lat columns"
    else:
        gdf = read_vector(path, "points", POINTS_FIX)
        if gdf.crs is None:
            if crs is None:
                raise CrsError(f"points {path} have no CRS; minewatch never assumes EPSG:4326 — set one, or pass "
                               "--points-crs")
            gdf = gdf.set_crs(crs)
        fix = "re-export them in EPSG:4326 or as a GPKG that keeps the CRS"
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]  # notna() warns about empties
    if gdf.empty:
        raise UsageError(f"points {path} hold no points; {POINTS_FIX}")
    gdf = gdf.explode(index_parts=False).reset_index(drop=True)
    kinds = sorted(set(gdf.geom_type) - {"Point"})
    if kinds:
        raise UsageError(f"points {path} hold {', '.join(kinds)} geometries, not points; give point labels "
                         "(polygons of predictions go to --reference)")
    if gdf.crs.is_geographic:
        _lonlat_check(gdf, path, fix)
    gdf = gdf.to_crs(4326)
    if (dup := gdf.geometry.to_wkb().duplicated().to_numpy()).any():  # a point counted twice weighs twice
        log.warning("points %s: %d point(s) repeat an earlier point's position; each is scored once", path, dup.sum())
    return PointSet(source_name(path), role, path, gdf[~dup].reset_index(drop=True))


def read_reference(path: Path):
    """The reference prediction layer as polygons in EPSG:4326 (points are refused; other geometries dropped).

    Raises:
        ConfigError: missing file. RasterError: unreadable. UsageError: no polygon. CrsError: no CRS / projected.
    """

    from models.labels import existing_file, read_vector

    fix = "give a GeoJSON/GPKG of prediction polygons"
    path = existing_file(Path(path), "--reference", fix)
    gdf = read_vector(path, "reference", fix)
    if gdf.crs is None:
        raise CrsError(f"reference {path} has no CRS; minewatch never assumes EPSG:4326 — set one")
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]  # notna() warns about empties
    gdf = gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise UsageError(f"reference {path} holds no polygons; {fix}")
    if gdf.crs.is_geographic:
        _lonlat_check(gdf, path, "re-export it in EPSG:4326")
    return gdf.to_crs(4326).reset_index(drop=True)


@dataclass(frozen=True)
class PointEvalRequest:
    """What ``minewatch evaluate --stac`` scores (see the module docstring).

    Attributes:
        stac: ``earth-search``, ``planetary-computer``, a STAC API URL or a local ItemCollection JSON.
        datetime: ``START/END`` of the composite (ISO dates).
        pools, negatives: point files (pool points expected detected, negatives expected not).
        reference: prediction polygons to compare with, or ``None``.
        bbox / aoi: the area to search (degrees / AOI GeoJSON); default: the points' extent grown by ``margin_m``.
        radius_m: a point counts as detected when a detected pixel's centre lies within this distance (m); the
            pixel under the point always counts.
        method, weights, device: the detector (as ``minewatch run``).
        cache_dir: where composites are cached (a rerun fetches nothing).
    """

    stac: str
    datetime: str
    pools: tuple[Path, ...] = ()
    negatives: tuple[Path, ...] = ()
    reference: Path | None = None
    bbox: tuple[float, float, float, float] | None = None
    aoi: Path | None = None
    collection: str | None = None
    max_cloud: float = 80.0
    limit: int | None = None
    asset_hosts: tuple[str, ...] = ()
    radius_m: float = 20.0
    margin_m: float = 300.0
    method: str = "fused"
    weights: str | None = None
    device: str = "auto"
    cache_dir: Path = Path("minewatch-eval-cache")
    xy_cols: tuple[str, str] | None = None
    points_crs: str | None = None


def _points_bbox(sets: list[PointSet], margin_m: float) -> tuple[float, float, float, float]:
    w = min(s.points.total_bounds[0] for s in sets)
    so = min(s.points.total_bounds[1] for s in sets)
    e = max(s.points.total_bounds[2] for s in sets)
    n = max(s.points.total_bounds[3] for s in sets)
    dlat = margin_m / 111_320.0
    dlon = margin_m / (111_320.0 * max(math.cos(math.radians(max(abs(so), abs(n)))), 0.01))
    return (w - dlon, so - dlat, e + dlon, n + dlat)


def _hits(classes: np.ndarray, clear: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius_px: float):
    """Per point: observed (clear pixel under it), pond within radius, footprint within radius."""
    r = int(math.floor(radius_px))
    offs = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= radius_px ** 2]
    h, w = classes.shape
    pond = np.zeros(rows.size, bool)
    foot = np.zeros(rows.size, bool)
    for dy, dx in offs or [(0, 0)]:
        y, x = np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)
        pond |= classes[y, x] == 2
        foot |= classes[y, x] > 0
    return clear[rows, cols], pond, foot


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def evaluate_points(req: PointEvalRequest) -> dict:
    """Score the detector at the request's points (and against its reference layer); see the module docstring.

    Raises:
        UsageError / ConfigError / CrsError / RasterError / PeriodError / StacError: bad inputs, before any network.
        WeightsError: unusable weights, before any network.
        StacError / NoDataError: the catalogue cannot be searched, holds no scene, or no point has a clear pixel.
    """
    import geopandas as gpd
    import rasterio.features
    from rasterio.crs import CRS

    from geo.config import DetectConfig, RunParams
    from geo.periods import parse_interval
    from geo.run.pipeline import check_weights
    from geo.sources.providers import resolve_provider
    from geo.stages.detect import FusionConfig, classify
    from models.scene_config import StacScene, check_bbox
    from models.stac_scenes import prepare_area, scene_composite

    sets = [read_points(p, "pool", xy_cols=req.xy_cols, points_crs=req.points_crs) for p in req.pools]
    sets += [read_points(p, "negative", xy_cols=req.xy_cols, points_crs=req.points_crs) for p in req.negatives]
    if not sets:
        raise UsageError("give point labels to score: --pools FILE (leaching-pool points) and/or --negatives FILE")
    reference = read_reference(req.reference) if req.reference else None
    if req.bbox is not None and req.aoi is not None:
        raise UsageError("--bbox and --aoi both give the area; keep one of them")
    try:
        parse_interval(req.datetime)
    except PeriodError as exc:
        raise PeriodError(f"--datetime: {exc}") from None
    resolve_provider(req.stac)  # unknown schemes refused now (StacError)
    params = RunParams(detect=DetectConfig(method=req.method, weights=req.weights or "", device=req.device))
    weights = check_weights(params)  # WeightsError before any network
    bbox = None
    if req.aoi is None:
        bbox = check_bbox(list(req.bbox), "--bbox") if req.bbox is not None else None
        if bbox is None:
            bbox = check_bbox(list(_points_bbox(sets, req.margin_m)), "the points' extent (use --bbox)")
    scene = StacScene(stac=req.stac, datetime=req.datetime, labels=sets[0].path, bbox=bbox, aoi=req.aoi,
                      collection=req.collection, max_cloud=req.max_cloud, limit=req.limit,
                      asset_hosts=tuple(req.asset_hosts))
    try:
        prep = prepare_area(scene, "evaluate")
    except ConfigError as exc:
        import re

        from models.stac_scenes import MAX_SCENE_KM2

        m = re.search(r"covers ([\d,.]+) km²", str(exc))
        if m is None:
            raise
        raise UsageError(f"the searched area covers {m.group(1)} km², over the {MAX_SCENE_KM2:,.0f} km² limit of one "
                         "composite; pass a smaller --bbox/--aoi around the points, or split the points into several "
                         "files and check each") from None
    grid = prep.grid
    area_ll = prep.aoi.geometry
    for s in sets:  # points outside the area: dropped with a warning; none inside at all: refused
        inside = s.points.within(area_ll)
        s.points["in_area"] = inside.to_numpy()
        if (~inside).any():
            log.warning("%s: %d of %d point(s) lie outside the searched area (%s) and are not scored", s.path,
                        int((~inside).sum()), len(inside), prep.aoi.name)
    if not any(s.points["in_area"].any() for s in sets):
        from models.labels import extent

        b = np.array([s.points.total_bounds for s in sets])
        span = extent((b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()), CRS.from_epsg(4326))
        raise UsageError(f"none of the points lies inside the searched area ({prep.aoi.name}); the points span "
                         f"{span}; check the points' CRS (--points-crs, --xy-cols) and --bbox/--aoi")
    comp, meta, hit = scene_composite(prep, Path(req.cache_dir), params)
    cfg = None if req.method == "rules" else FusionConfig(device=req.device, weights=req.weights or None)
    det = classify(comp, method=req.method, config=cfg)
    clear = (comp.clear_count > 0) & prep.region
    classes = np.where(clear, det.classes, 0)
    radius_px = req.radius_m / grid.resolution
    inv = ~grid.transform
    rows_out, per_point = [], []
    for s in sets:
        pts = s.points[s.points["in_area"]].to_crs(grid.crs)
        px, py = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
        cols_f, rows_f = inv.a * px + inv.b * py + inv.c, inv.d * px + inv.e * py + inv.f
        rr = np.clip(np.floor(rows_f).astype(int), 0, grid.height - 1)
        cc = np.clip(np.floor(cols_f).astype(int), 0, grid.width - 1)
        obs, pond, foot = _hits(classes, clear, rr, cc, radius_px)
        n_obs = int(obs.sum())
        row = {"set": s.name, "role": s.role, "path": str(s.path), "count": len(s.points), "in_area": len(pts),
               "observed": n_obs, "pond_detected": int((pond & obs).sum()),
               "footprint_detected": int((foot & obs).sum())}
        row["pond_rate"] = _rate(row["pond_detected"], n_obs)
        row["footprint_rate"] = _rate(row["footprint_detected"], n_obs)
        row["metric"] = (f"recall: pond {row['pond_rate']}, footprint {row['footprint_rate']}" if s.role == "pool"
                         else f"false-positive rate (footprint) {row['footprint_rate']}")
        rows_out.append(row)
        ll = s.points[s.points["in_area"]]
        per_point += [{"set": s.name, "role": s.role, "lon": round(float(p.x), 6), "lat": round(float(p.y), 6),
                       "observed": bool(o), "pond": bool(pd_ and o), "footprint": bool(f and o)}
                      for p, o, pd_, f in zip(ll.geometry, obs, pond, foot)]
    if not any(r["observed"] for r in rows_out):
        raise NoDataError(f"none of the points in the searched area has a clear observation in the "
                          f"{len(meta.get('items', []))} scene(s) of {req.datetime} (cloud or nodata); widen "
                          "--datetime or raise --max-cloud")
    ref = None
    if reference is not None:
        ref = _reference_agreement(reference, gpd, rasterio.features, classes, clear, grid, area_ll, req.reference)
        rows_out.append(ref["row"])
    return {"stac": scene.source, "collection": scene.provider().collection, "datetime": req.datetime,
            "area": prep.aoi.name, "grid": grid.to_dict(), "items": list(meta.get("items", [])), "cache_hit": hit,
            "method": req.method, "weights": weights, "radius_m": req.radius_m,
            "clear_fraction": round(float(clear.sum() / max(prep.region.sum(), 1)), 4),
            "rows": rows_out, "reference": ref and {k: v for k, v in ref.items() if k != "row"}, "points": per_point}


def _reference_agreement(reference, gpd, features, classes, clear, grid, area_ll, path) -> dict:
    inside = reference[reference.intersects(area_ll)]
    ref_utm = inside.to_crs(grid.crs)
    n = len(ref_utm)
    found = 0
    ref_mask = np.zeros(grid.shape, bool)
    seen = 0
    for geom in ref_utm.geometry:
        m = features.geometry_mask([geom], out_shape=grid.shape, transform=grid.transform, invert=True,
                                   all_touched=True)
        ref_mask |= m
        if (m & clear).any():
            seen += 1
            found += bool(((classes > 0) & m).any())
    d, r = (classes > 0) & clear, ref_mask & clear
    inter, union = int((d & r).sum()), int((d | r).sum())
    out = {"path": str(path), "polygons": len(reference), "polygons_in_area": n, "polygons_observed": seen,
           "polygons_with_detection": found, "polygon_detection_rate": _rate(found, seen),
           "pixel_iou": _rate(inter, union), "reference_share_detected": _rate(inter, int(r.sum())),
           "detection_share_in_reference": _rate(inter, int(d.sum()))}
    out["row"] = {"set": source_name(path), "role": "reference", "path": str(path), "count": len(reference),
                  "in_area": n, "observed": seen, "pond_detected": None, "footprint_detected": found,
                  "pond_rate": None, "footprint_rate": out["polygon_detection_rate"],
                  "metric": f"polygons with a detection {out['polygon_detection_rate']}; pixel IoU {out['pixel_iou']}, "
                            f"reference detected {out['reference_share_detected']}, detections inside reference "
                            f"{out['detection_share_in_reference']}"}
    return out


TABLE_COLUMNS = ("set", "role", "count", "in_area", "observed", "pond_detected", "footprint_detected", "pond_rate",
                 "footprint_rate", "metric")


def format_table(res: dict) -> str:
    """The result as a plain-text table (one row per point file and the reference layer)."""
    head = (f"{'set':<34}{'role':<10}{'count':>7}{'in area':>9}{'clear':>7}{'pond':>6}{'footpr.':>8}  metric")
    lines = [f"{res['stac']} {res['datetime']}: {len(res['items'])} scene(s), area {res['area']}, clear "
             f"{res['clear_fraction']:.2f}; method {res['method']}"
             + (f", weights {res['weights']['name']} {res['weights']['version']}" if res["weights"] else "")
             + f"; a point is detected within {res['radius_m']:g} m", head]
    for r in res["rows"]:
        pond = "-" if r["pond_detected"] is None else str(r["pond_detected"])
        lines.append(f"{r['set'][:33]:<34}{r['role']:<10}{r['count']:>7}{r['in_area']:>9}{r['observed']:>7}"
                     f"{pond:>6}{r['footprint_detected']:>8}  {r['metric']}")
    return "\n".join(lines)


def write_csv(res: dict, path: Path) -> None:
    """The table as CSV (columns :data:`TABLE_COLUMNS`), written atomically."""
    import pandas as pd

    from geo.fsutil import atomic_path

    with atomic_path(Path(path)) as tmp:
        df = pd.DataFrame([{k: r.get(k) for k in TABLE_COLUMNS} for r in res["rows"]])
        df.astype({k: "Int64" for k in ("count", "in_area", "observed", "pond_detected", "footprint_detected")}).to_csv(
            tmp, index=False)


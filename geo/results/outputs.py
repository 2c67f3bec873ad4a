"""Merge task rasters into period mosaics, then vectors, sites, change, tables and the report."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from geo.aoi import Aoi, analysis_grid, region_mask, reproject_geometry
from geo.results.change import no_data_row, site_changes, period_row, summarize
from geo.results.claims import compare_claims, grid_outline_wgs84
from geo.results.intervals import LINK_SLACK_PX, area_interval, count_interval, unseen_share
from geo.results.report_sections import model_check_notes, read_estimate
from geo.results.run_inputs import stale_estimate_periods
from geo.results.tracking import track_sites
from geo.config import RunParams
from geo.results.export import read_raster, write_csv, write_geojson, write_gpkg
from geo.results.quicklook import pixel_offsets, rgb_from_tasks
from geo.fsutil import write_json
from geo.grid import GeoGrid
from geo.results.report import growth_chart, map_image, write_report
from geo.results.sites import group_sites
from geo.results.styles import default_styles
from geo.results.layers import confidence_pct, with_period
from geo.results.maps import report_maps
from geo.results.qgis_project import write_project
from geo.results.rasters import write_classmap, write_confidence
from geo.stages.input_check import season_check, season_checks
from geo.stages.vectorize import NOT_OBSERVED
from geo.stages.vectorize import polygonize

log = logging.getLogger(__name__)

def mosaic_period(out: Path, period: str, grid: GeoGrid) -> dict:
    """Mosaic one period's task rasters onto the AOI grid and write ``classmap_<period>.tif``.

    Returns stats: ``clear_px`` and ``region_px`` summed over tiles, ``n_scenes`` the most of any tile.
    """
    classes = np.full(grid.shape, NOT_OBSERVED, np.uint8)  # map14: unseen pixels are nodata, not background
    conf = np.full(grid.shape, NOT_OBSERVED, np.uint8)
    stats = {"clear_px": 0, "region_px": 0, "n_scenes": 0, "model_checks": []}
    for done in sorted((out / "tasks" / period).glob("*/done.json")):
        d = json.loads(done.read_text())
        for name, dst in (("classes.tif", classes), ("confidence.tif", conf)):
            try:
                with rasterio.open(done.parent / name) as src:
                    r, c = pixel_offsets(src, grid)
                    part, nodata = src.read(1), src.nodata
            except rasterio.errors.RasterioError as exc:
                # a damaged task raster would fail every resume: unmark the task so that the rerun redoes it
                done.unlink(missing_ok=True)
                from geo.errors import RasterError

                msg = " ".join(str(exc).split())[:160]
                raise RasterError(f"task raster {done.parent / name} is damaged ({msg}); its task is marked "
                                  "unfinished: rerun the same command to redo it (the other tasks are kept)") from None
            view = dst[r : r + part.shape[0], c : c + part.shape[1]]
            # old task rasters have no nodata (0 outside the AOI); newer ones mark unseen pixels NOT_OBSERVED
            seen = part != NOT_OBSERVED if nodata == NOT_OBSERVED else np.ones(part.shape, bool)
            view[seen] = part[seen]
        stats["clear_px"] += d["clear_px"]
        stats["region_px"] += d["region_px"]
        stats["n_scenes"] = max(stats["n_scenes"], d["n_scenes"])
        stats["model_checks"].append(d.get("model_check"))
    write_classmap(classes, grid, out / f"classmap_{period}.tif")
    write_confidence(conf, grid, out / f"confidence_{period}.tif")
    return stats


def seen_mask(out: Path, period: str) -> tuple[np.ndarray, GeoGrid]:
    """(bool raster, grid): the pixels of ``classmap_<period>.tif`` the season saw clear (not nodata)."""
    classes, grid = read_raster(out / f"classmap_{period}.tif")
    return classes != NOT_OBSERVED, grid


def read_confidence(path: Path) -> np.ndarray | None:
    """A confidence raster as float 0–1 (files hold percent, 255 = not observed → 0); None when absent."""
    if not path.exists():
        return None
    conf = read_raster(path)[0].astype(np.float32)
    return np.where(conf == NOT_OBSERVED, 0, conf) / 100.0


def vectorize_period(out: Path, period: str, params: RunParams) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, GeoGrid]:
    """Footprints and sites of a period from its class map (and confidence) in the run folder."""
    classes, grid = read_raster(out / f"classmap_{period}.tif")
    conf = read_confidence(out / f"confidence_{period}.tif")
    if conf is not None and conf.shape != classes.shape:
        from geo.errors import RasterError

        raise RasterError(f"{out / f'confidence_{period}.tif'} is {conf.shape[1]} x {conf.shape[0]} px but "
                          f"classmap_{period}.tif is {classes.shape[1]} x {classes.shape[0]} px: the two come from "
                          "different runs; rerun the 'minewatch run' command that made this folder to rebuild both")
    fp = polygonize(classes, grid, confidence=conf, min_area_m2=params.detect.min_area_m2,
                    min_pond_area_m2=params.detect.min_pond_area_m2)
    sites, membership = group_sites(fp, params.sites)
    fp["site_id"] = membership
    # map14: period text + period_start/period_end dates on every layer; confidence in percent in files
    return confidence_pct(with_period(fp, period)), with_period(sites, period), grid


def period_intervals(out: Path, period: str, fp: gpd.GeoDataFrame, sites: gpd.GeoDataFrame,
                     params: RunParams, aoi_wgs84=None) -> dict:
    """95 % intervals of a period's areas and site count from its class and confidence rasters in the run folder.

    ``aoi_wgs84``: the run's AOI (lon/lat); pixels of the class-map grid outside it are not "unobserved ground"
    and do not widen the intervals. None: the whole grid is the AOI.
    """
    classes, grid = read_raster(out / f"classmap_{period}.tif")
    region = None if aoi_wgs84 is None else region_mask(reproject_geometry(aoi_wgs84, 4326, grid.crs).wkt, grid)
    return intervals_of(classes, read_confidence(out / f"confidence_{period}.tif"), grid, fp, sites, params,
                        region=region)


def intervals_of(classes: np.ndarray, conf: np.ndarray | None, grid: GeoGrid, fp: gpd.GeoDataFrame,
                 sites: gpd.GeoDataFrame, params: RunParams, *, region: np.ndarray | None = None) -> dict:
    """95 % intervals (``<col>_low`` / ``<col>_high``) of areas and site count; see geo.results.intervals.

    ``region``: bool raster, True inside the AOI (None: the whole grid).
    """
    px = grid.resolution**2
    iv: dict[str, float] = {}
    for col, values in (("footprint_area_m2", (1, 2)), ("pond_area_m2", (2,)), ("cleared_area_m2", (1,))):
        _, iv[f"{col}_low"], iv[f"{col}_high"] = area_interval(classes, conf, values, px, region=region)
    fp_area = float(fp["area_m2"].sum()) if len(fp) else 0.0
    extent = float(sites["extent_area_m2"].sum()) if len(sites) else 0.0
    ratio_lo = iv["footprint_area_m2_low"] / fp_area if fp_area else 1.0
    ratio_hi = iv["footprint_area_m2_high"] / fp_area if fp_area else 1.0
    iv["site_extent_m2_low"], iv["site_extent_m2_high"] = extent * ratio_lo, extent * ratio_hi
    existence = []
    if len(sites):  # each site is real with the area-weighted mean confidence of its polygons
        w = fp["area_m2"].to_numpy(float)
        conf01 = fp["confidence"] if "confidence" in fp else fp["confidence_pct"] / 100.0  # in memory / in files
        c = np.nan_to_num(conf01.to_numpy(float), nan=1.0) * w
        by = pd.DataFrame({"s": fp["site_id"].to_numpy(), "c": c, "w": w}).groupby("s").sum()
        q = (by["c"] / by["w"].where(by["w"] > 0)).fillna(1.0)
        existence = [float(q.get(int(sid), 1.0)) for sid in sites["site_id"]]
    slack = LINK_SLACK_PX * grid.resolution
    counts = [len(group_sites(fp[["class", "area_m2", "geometry"]], dataclasses.replace(
        params.sites, link_distance_m=max(0.0, params.sites.link_distance_m + d)))[0]) if len(fp) else 0
        for d in (slack, -slack)]
    iv["site_count_low"], iv["site_count_high"] = count_interval(len(sites), np.array(existence), *counts,
                                                                 unseen_share=unseen_share(conf, region))
    return iv


def is_simulated(items_by_period: dict[str, list[dict]]) -> bool:
    """True when any STAC item says it is simulated (``minewatch:simulated`` or ``minewatch:synthetic``)."""
    return any((i.get("properties") or {}).get(k) for v in items_by_period.values() for i in v
               for k in ("minewatch:simulated", "minewatch:synthetic"))


def write_vectors_and_report(out: Path, aoi_name: str, periods: list[str], params: RunParams,
                             coverage: dict[str, dict], rgb_last: np.ndarray | None = None,
                             grid: GeoGrid | None = None, notes: list[str] | None = None, *,
                             simulated: bool = False, aoi_wgs84=None) -> dict[str, Path]:
    """From ``classmap_<period>.tif`` files and per-period coverage, write every vector, table and report output.

    ``coverage[period]`` holds ``clear_fraction`` (0–1) and ``n_scenes``. ``simulated``: the imagery was simulated
    (banner in the report, no claim verdicts). ``aoi_wgs84``: the run's AOI (shapely, EPSG:4326) for deciding
    which published claims the run can be compared with; the class maps' extent when None.
    """
    estimate, stale_notes = read_estimate(out), []
    if estimate is not None and (stale := stale_estimate_periods(out, estimate)):
        log.warning("%s was made from other class maps than this run's for %s; the report leaves those seasons out "
                    "of its sample-based estimate", out / "estimate.csv", ", ".join(stale))
        stale_notes.append(f"estimate.csv holds a sample-based estimate for {', '.join(stale)} made from other class "
                           "maps than this run's (the run was redone since); it is left out of this report and the "
                           f"file is kept. Draw and label a new sample ('minewatch sample {out}', then 'minewatch "
                           "estimate').")
        estimate = estimate[~estimate["period"].astype(str).isin(stale)]
        estimate = estimate if len(estimate) else None
    checked = map_accuracy(estimate)  # the map's check against reference labels, per season
    layers: dict[str, gpd.GeoDataFrame] = {}
    checks = season_checks(coverage)  # docs/MODEL_CHECKS.md: checked once, so every output says the same
    rows, found, changes = [], [], []
    last_fp = None
    seasons, map_grid = [], None  # map14: every season for the web map and the briefing map
    for p in periods:
        if not (out / f"classmap_{p}.tif").exists():
            rows.append(no_data_row(p))  # no scenes: unknown, not 0 km² (a 0 would read as "-100 %")
            continue
        fp, sites, g = vectorize_period(out, p, params)
        grid = grid or g
        map_grid = map_grid or g
        seasons.append((p, fp, sites))
        cov = coverage.get(p, {})
        rows.append(period_row(p, fp, sites, clear_fraction=cov.get("clear_fraction", 0.0),
                               n_scenes=cov.get("n_scenes", 0),
                               intervals=period_intervals(out, p, fp, sites, params, aoi_wgs84),
                               model_uncertain_share=checks.get(p, {}).get("model_uncertain_share"),
                               rules_dropped_m2=checks.get(p, {}).get("rules_dropped_m2")) | checked.get(p, {}))
        found.append((p, fp, sites))
    ids, events = track_sites([(p, s) for p, _, s in found], max_gap_m=params.sites.link_distance_m)
    prev, seen_prev = None, None
    for (p, fp, sites), id_map, ev in zip(found, ids, events):
        seen = seen_mask(out, p)
        fp["site_id"] = [id_map.get(int(v), 0) for v in fp["site_id"]]
        sites["site_id"] = [id_map[int(v)] for v in sites["site_id"]]
        write_geojson(fp, out / f"footprints_{p}.geojson")
        layers[f"footprints_{p}"] = fp
        layers[f"sites_{p}"] = sites
        if prev is not None:
            changes.append(site_changes(prev[1], sites, period_from=prev[0], period_to=p, config=params.change,
                                        events=ev, seen_from=seen_prev, seen_to=seen))
        prev, seen_prev = (p, sites), seen
        last_fp = (p, fp)
    summary = summarize(rows, params.change)
    if changes:
        change = pd.concat(changes, ignore_index=True)
        change = gpd.GeoDataFrame(change, geometry="geometry", crs=changes[0].crs)
        change = with_period(change, "", date_from="period_to")  # map14: dated by the later season
        write_geojson(change, out / "change.geojson")
        layers["change"] = change
        for (a, b), part in change.groupby(["period_from", "period_to"], sort=False):  # map14: one per transition
            layers[f"change_{a}_to_{b}"] = part.reset_index(drop=True)
    if layers:
        write_gpkg(layers, out / "footprints.gpkg", styles=default_styles(list(layers)))
        write_project(out, f"minewatch: {aoi_name}", {n: g.crs for n, g in layers.items()},
                      [s for s, _, _ in seasons])  # map14: QGIS project with time settings
    csv = write_csv(summary, out / "summary.csv")
    if aoi_wgs84 is None and grid is not None:
        aoi_wgs84 = grid_outline_wgs84(grid)
    claims = compare_claims(summary, aoi_wgs84=aoi_wgs84, simulated=simulated)
    write_csv(claims, out / "claims.csv")
    images = {"Growth chart": growth_chart(summary, out / "growth.png")}
    if rgb_last is not None and grid is not None and last_fp is not None:
        images[f"Map {last_fp[0]}"] = map_image(rgb_last, grid, last_fp[1], out / "map.png",
                                                  title=f"{aoi_name}: footprints {last_fp[0]} over the composite")
    # map14: interactive web map (report.html #map) and briefing_map.png
    web_map, briefing = report_maps(out, aoi_name, seasons, coverage, map_grid,
                                    (rgb_last, grid) if rgb_last is not None and grid is not None else None)
    images.update(briefing)
    notes = (notes or []) + [
        f"Detection method: {params.detect.method}; cleared-land polygons under {params.detect.min_area_m2:.0f} m² and "
        f"ponds under {params.detect.min_pond_area_m2:.0f} m² dropped.",
        "Claims are matched to the dry season that ends in the claim's year (e.g. 2021 → 2020-21).",
    ]
    if params.detect.method != "rules":
        notes.append("The 95 % intervals cover the error sources of docs/INTERVALS.md and were checked on minewatch's "
                     "own simulator only. On scenes from generators written blind to minewatch (the 'blind generators' "
                     "table of models/weights/MODEL_CARD.md) the detector's footprint growth was off by tens of "
                     "percentage points or more, far outside such intervals. Before publishing a figure, check the map "
                     "against reference labels: 'minewatch sample' + 'minewatch estimate', or 'minewatch evaluate'.")
    if params.detect.method == "rules":
        notes.append("The 95 % intervals are calibrated for the fused detector (docs/INTERVALS.md); the rules-only "
                     "detector misses whole objects on simulated series, so its intervals are too narrow. Use "
                     "'minewatch sample' and 'minewatch estimate' for an interval that holds.")
    notes = model_check_notes(checks, periods, model_run=params.detect.method != "rules", summary=summary) + notes \
        + stale_notes
    md, html = write_report(out, title=f"minewatch report: {aoi_name}", summary=summary, claims=claims,
                            images=images, notes=notes, changes=layers.get("change"), simulated=simulated,
                            sites=params.sites, estimate=estimate, map_html=web_map, change=params.change,
                            detect=params.detect)
    return {"summary_csv": csv, "report_md": md, "report_html": html, "model_checks": checks}


def map_accuracy(estimate) -> dict[str, dict[str, float]]:
    """``{period: {"map_users_accuracy": …, "map_producers_accuracy": …, "map_check_points": …}}``: the footprint
    row of each season of a sample-based estimate (``estimate.csv``, stale seasons already left out; the points are its
    ``n_sample``, NaN in an older file); empty without one."""
    if estimate is None:
        return {}
    fp = estimate[estimate["class"].astype(str) == "footprint"]
    return {str(r["period"]): {"map_users_accuracy": float(r["users_accuracy"]),
                               "map_producers_accuracy": float(r["producers_accuracy"]),
                               "map_check_points": float(r.get("n_sample", np.nan))} for _, r in fp.iterrows()}


def scene_date_range(items: list[dict]) -> list[str] | None:
    """``[first, last]`` acquisition date (ISO) of a season's STAC items, or None."""
    days = sorted(str((i.get("properties") or {}).get("datetime") or "")[:10] for i in items)
    days = [d for d in days if d]
    return [days[0], days[-1]] if days else None


def build_outputs(out: Path, aoi: Aoi, req, items_by_period: dict[str, list[dict]]) -> dict[str, Path]:
    """Mosaic every period, then write vectors, tables and the report."""

    grid = analysis_grid(aoi, resolution=req.params.resolution_m)
    region = region_mask(reproject_geometry(aoi.geometry, 4326, grid.crs).wkt, grid)
    coverage, mosaicked = {}, []
    labels = [p.label for p in req.periods]
    for p in labels:
        if not (out / "tasks" / p).exists():
            log.warning("period %s has no scenes; it is reported as 'no data', with no area and no growth from or to it", p)
            continue
        st = mosaic_period(out, p, grid)
        coverage[p] = {"clear_fraction": st["clear_px"] / max(1, int(region.sum())),
                       "n_scenes": len(items_by_period.get(p, [])),
                       "scene_dates": scene_date_range(items_by_period.get(p, [])),  # map14: for the maps
                       **season_check(st["model_checks"])}
        mosaicked.append(p)
    write_json(out / "coverage.json", coverage)
    quicklook = rgb_from_tasks(out, mosaicked[-1], grid) if mosaicked else None
    rgb_last, rgb_grid = quicklook if quicklook is not None else (None, None)
    return write_vectors_and_report(out, aoi.name, labels, req.params, coverage, rgb_last, rgb_grid,
                                    simulated=is_simulated(items_by_period), aoi_wgs84=aoi.geometry)

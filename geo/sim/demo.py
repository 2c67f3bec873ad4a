"""Write the embedded offline demo: simulated scenes as COGs with Earth Search v1-shaped STAC items, plus truth.

Layout under ``root``::

    scenes/<item id>/{B02,B03,B04,B08,B11,B12,SCL}.tif   COG, DEFLATE, nodata 0
    catalog/items.json        STAC ItemCollection (absolute file hrefs), catalog/collection.json
    truth/classmap_<period>.tif  uint8 0/1/2 on the truth grid; truth/sites.geojson; truth/summary.csv
    aoi.geojson               the demo AOI (EPSG:4326); demo.json  seed, config, grids, periods (written last)

Every file is written under a temporary name and moved into place with ``os.replace``; ``demo.json`` is
written last, so a dataset is complete exactly when ``demo.json`` exists and matches the config.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import rasterio
import rasterio.features
import shapely
from pyproj import Transformer
from shapely.geometry import box, mapping, shape

from geo.bands import BANDS
from geo.errors import OutputError
from geo.grid import GeoGrid
from geo.periods import Period
from geo.sim.scene import Acquisition, Scenario, SimConfig, render_acquisition, simulate, site_id_map

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MGRS_TILE = "47RMJ"  # UTM 47, band R, 100 km square M (E 400-500 km) J (N 2800-2900 km)
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
]
#: Earth Search v1 asset key, file name, title, full width at half maximum (µm) per band id.
ASSETS = {
    "B02": ("blue", "Blue (band 2) - 10m", 0.098),
    "B03": ("green", "Green (band 3) - 10m", 0.045),
    "B04": ("red", "Red (band 4) - 10m", 0.038),
    "B08": ("nir", "NIR 1 (band 8) - 10m", 0.145),
    "B11": ("swir16", "SWIR 1 (band 11) - 20m", 0.143),
    "B12": ("swir22", "SWIR 2 (band 12) - 20m", 0.242),
}
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


@dataclass(frozen=True)
class DemoDataset:
    """A written demo dataset (see the module docstring for the layout).

    Attributes:
        root: folder holding everything; items_path: ``catalog/items.json``; aoi_path: ``aoi.geojson``.
        grid: truth grid (EPSG:32647, 10 m); periods: the dry seasons; truth_dir: ``truth/``.
        config: the simulator config that produced it.
    """

    root: Path
    items_path: Path
    aoi_path: Path
    grid: GeoGrid
    periods: list[Period]
    truth_dir: Path
    config: SimConfig


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_json(path: Path, obj: object) -> None:
    _atomic_bytes(path, (json.dumps(obj, indent=1, default=str) + "\n").encode())


def _write_tif(path: Path, array: np.ndarray, grid: GeoGrid, *, nodata: int | None, cog: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.tif")
    profile = dict(width=array.shape[1], height=array.shape[0], count=1, dtype=array.dtype.name, crs=grid.crs,
                   transform=grid.transform, nodata=nodata, compress="DEFLATE")
    if cog:
        profile.update(driver="COG", blocksize=256, overview_resampling="nearest" if array.dtype == np.uint8
                       else "average", predictor=2)
    else:
        profile.update(driver="GTiff", tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array, 1)
    os.replace(tmp, path)


def _to_wgs84(crs):
    """A function mapping an (n, 2) array of CRS coordinates to lon/lat, for ``shapely.transform``."""
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))


def shp_transform(fn, geom):
    return shapely.transform(geom, fn)


def _grid_polygon_wgs84(grid: GeoGrid, inset_m: float = 0.0):
    left, bottom, right, top = grid.bounds
    poly = box(left + inset_m, bottom + inset_m, right - inset_m, top - inset_m).segmentize(500.0)
    return shp_transform(_to_wgs84(grid.crs), poly)


def _scl_percentages(scl: np.ndarray) -> dict[str, float]:
    total = scl.size
    valid = scl > 0
    nv = max(1, int(valid.sum()))
    pct = lambda *c: round(100.0 * float(np.isin(scl, c).sum()) / nv, 4)  # noqa: E731
    return {
        "s2:nodata_pixel_percentage": round(100.0 * (total - int(valid.sum())) / total, 4),
        "s2:saturated_defective_pixel_percentage": 0.0,
        "s2:dark_features_percentage": pct(2),
        "s2:cloud_shadow_percentage": pct(3),
        "s2:vegetation_percentage": pct(4),
        "s2:not_vegetated_percentage": pct(5),
        "s2:water_percentage": pct(6),
        "s2:unclassified_percentage": pct(7),
        "s2:medium_proba_clouds_percentage": pct(8),
        "s2:high_proba_clouds_percentage": pct(9),
        "s2:thin_cirrus_percentage": pct(10),
        "s2:snow_ice_percentage": pct(11),
        "eo:cloud_cover": pct(8, 9, 10),
    }


def item_id(acq_platform: str, date: dt.date) -> str:
    """Earth Search v1 item id, e.g. ``S2B_47RMJ_20200115_0_L2A``."""
    return f"S2{acq_platform[-1].upper()}_{MGRS_TILE}_{date:%Y%m%d}_0_L2A"


def item_dict(acq: Acquisition, scn: Scenario, folder: Path) -> dict:
    """An Earth Search v1-shaped STAC item for one written acquisition (hrefs are absolute file paths)."""
    plan, grid = acq.plan, scn.scene_grid
    iid = item_id(plan.platform, plan.date)
    geom = _grid_polygon_wgs84(grid)
    t = plan.datetime
    baseline_n = plan.baseline.replace(".", "")
    props = {
        "datetime": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "created": t.replace(hour=9).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "platform": plan.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "gsd": 10,
        "proj:epsg": grid.crs.to_epsg(),
        "mgrs:utm_zone": int(MGRS_TILE[:2]),
        "mgrs:latitude_band": MGRS_TILE[2],
        "mgrs:grid_square": MGRS_TILE[3:],
        "grid:code": f"MGRS-{MGRS_TILE}",
        "s2:mgrs_tile": MGRS_TILE,
        "view:sun_azimuth": round(plan.sun_azimuth, 4),
        "view:sun_elevation": round(plan.sun_elevation, 4),
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": plan.baseline,
        "s2:product_uri": f"S2{plan.platform[-1].upper()}_MSIL2A_{t:%Y%m%dT%H%M%S}_N{baseline_n}_R004_T{MGRS_TILE}"
                          f"_{t:%Y%m%d}T090000.SAFE",
        "s2:datatake_type": "INS-NOBS",
        "s2:degraded_msi_data_percentage": 0.0,
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False,
        "minewatch:synthetic": True,
        "minewatch:simulated": True,  # read by the pipeline: manifest "simulated", report banner, no verdicts
        **_scl_percentages(acq.scl),
    }
    assets = {}
    for b, (key, title, fwhm) in ASSETS.items():
        arr = acq.dn[b]
        res = BANDS[b].resolution_m
        assets[key] = {
            "href": str((folder / f"{b}.tif").resolve()), "type": COG_TYPE, "title": title,
            "eo:bands": [{"name": b, "common_name": BANDS[b].common_name,
                          "center_wavelength": round(BANDS[b].wavelength_nm / 1000, 3), "full_width_half_max": fwhm}],
            "gsd": res, "proj:shape": list(arr.shape),
            "proj:transform": [float(res), 0.0, grid.transform.c, 0.0, -float(res), grid.transform.f],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": res,
                              "scale": 0.0001, "offset": -plan.offset_dn / 10000.0}],
            "roles": ["data", "reflectance"],
        }
    assets["scl"] = {
        "href": str((folder / "SCL.tif").resolve()), "type": COG_TYPE, "title": "Scene classification map (SCL)",
        "proj:shape": list(acq.scl.shape), "proj:transform": [20.0, 0.0, grid.transform.c, 0.0, -20.0, grid.transform.f],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20, "unit": "1"}],
        "roles": ["data", "reflectance"],
    }
    return {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": STAC_EXTENSIONS, "id": iid,
        "geometry": mapping(geom), "bbox": list(geom.bounds), "properties": props, "links": [],
        "assets": assets, "collection": "sentinel-2-l2a",
    }


def _collection_dict(items: list[dict], scn: Scenario) -> dict:
    geom = _grid_polygon_wgs84(scn.scene_grid)
    times = sorted(i["properties"]["datetime"] for i in items)
    col = pystac.Collection(
        id="sentinel-2-l2a",
        description="minewatch SIMULATED Sentinel-2 L2A scenes (geo.sim.scene), shaped like Earth Search v1",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(geom.bounds)]),
            pystac.TemporalExtent([[dt.datetime.fromisoformat(times[0].replace("Z", "+00:00")),
                                    dt.datetime.fromisoformat(times[-1].replace("Z", "+00:00"))]])),
        license="CC-BY-4.0", title="Sentinel-2 Level-2A (simulated demo)")
    d = col.to_dict(include_self_link=False)
    d["links"] = []
    return d


def _sites_geojson(scn: Scenario) -> dict:
    ids = site_id_map(scn)
    grid = scn.truth_grid
    to_ll = _to_wgs84(grid.crs)
    polys: dict[int, list] = {}
    for geom, val in rasterio.features.shapes(ids.astype(np.int32), mask=ids > 0, transform=grid.transform):
        polys.setdefault(int(val), []).append(shape(geom))
    labels = [p.label for p in scn.periods]
    feats = []
    for site in scn.sites:
        if site.site_id not in polys:
            continue
        active = [t for t in range(len(labels)) if site.active(t)]
        props = {
            "site_id": site.site_id,
            "first_period": labels[max(0, site.start)],
            "last_period": labels[active[-1]] if site.abandon is not None and active else None,
            "abandoned": site.abandon is not None,
            "abandoned_from": labels[site.abandon] if site.abandon is not None else None,
            "before_series": site.start < 0,
        }
        for t, lab in enumerate(labels):
            props[f"area_m2_{lab}"] = scn.truth[t].site_area_m2.get(site.site_id, 0.0)
        geom = shp_transform(to_ll, shapely.union_all(polys[site.site_id]))
        feats.append({"type": "Feature", "properties": props, "geometry": mapping(geom)})
    return {"type": "FeatureCollection", "name": "minewatch demo truth sites (union of all seasons)",
            "features": feats}


def _summary_csv(scn: Scenario) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["period", "pond_area_m2", "cleared_area_m2", "footprint_area_m2", "site_count"])
    for tr in scn.truth:
        w.writerow([tr.period.label, f"{tr.pond_area_m2:.0f}", f"{tr.cleared_area_m2:.0f}",
                    f"{tr.footprint_area_m2:.0f}", tr.site_count])
    return buf.getvalue().encode()


def _aoi_geojson(scn: Scenario) -> dict:
    geom = _grid_polygon_wgs84(scn.truth_grid, inset_m=5.0)
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": mapping(geom), "properties": {
        "name": "minewatch-demo",
        "source": f"geo.sim.scene (SimConfig seed {scn.config.seed}): SIMULATED scenes, not real imagery",
        "note": "Truth grid (EPSG:32647, 10 m) inset by half a pixel (5 m; snapping outward to 10 m gives the truth grid back), inside the Chipwi-Pangwa belt's DEV region "
                "(lat < 25.70); the landscape and mines in it are synthetic."}}]}


def _demo_meta(scn: Scenario, n_items: int) -> dict:
    return {
        "format_version": FORMAT_VERSION, "seed": scn.config.seed, "config": scn.config.to_dict(),
        "grid": scn.truth_grid.to_dict(), "scene_grid": scn.scene_grid.to_dict(),
        "periods": [{"label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()} for p in scn.periods],
        "items": n_items, "synthetic": True,
    }


def _existing(root: Path, cfg: SimConfig) -> DemoDataset | None:
    meta_path = root / "demo.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("format_version") != FORMAT_VERSION or meta.get("config") != json.loads(json.dumps(cfg.to_dict())):
        return None
    ds = _dataset(root, cfg, GeoGrid.from_dict(meta["grid"]),
                  [Period(dt.date.fromisoformat(p["start"]), dt.date.fromisoformat(p["end"]), p["label"])
                   for p in meta["periods"]])
    try:
        items = json.loads(ds.items_path.read_text())["features"]
    except (OSError, json.JSONDecodeError, KeyError):
        return None
    hrefs = [Path(a["href"]) for it in items for a in it["assets"].values()]
    truth = [ds.truth_dir / f"classmap_{p.label}.tif" for p in ds.periods]
    if len(items) != meta.get("items") or not all(p.is_file() for p in [*hrefs, *truth, ds.aoi_path]):
        return None
    return ds


def _dataset(root: Path, cfg: SimConfig, grid: GeoGrid, periods: list[Period]) -> DemoDataset:
    return DemoDataset(root, root / "catalog" / "items.json", root / "aoi.geojson", grid, periods,
                       root / "truth", cfg)


def write_demo_dataset(root: Path, *, seed: int = 7, config: SimConfig | None = None) -> DemoDataset:
    """Simulate and write the demo dataset under ``root`` (see the module docstring); return its description.

    ``config`` overrides the defaults (its ``seed`` is replaced by ``seed`` when ``config`` is None).
    Idempotent: if ``root/demo.json`` records the same config and every file exists, nothing is rewritten.

    Raises:
        OutputError: ``root`` cannot be created or written.
    """
    cfg = config if config is not None else SimConfig(seed=seed)
    root = Path(root).resolve()
    found = _existing(root, cfg)
    if found is not None:
        log.info("demo dataset already complete at %s (seed %d); reusing it", root, cfg.seed)
        return found
    try:
        for sub in ("scenes", "catalog", "truth"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "demo.json").unlink(missing_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write the demo dataset under {root}: {e}; choose a writable --out folder") from e
    scn = simulate(cfg)
    items = []
    for i in range(len(scn.plans)):
        acq = render_acquisition(scn, i)
        folder = root / "scenes" / item_id(acq.plan.platform, acq.plan.date)
        folder.mkdir(exist_ok=True)
        grid20 = GeoGrid(scn.scene_grid.crs, scn.scene_grid.transform @ scn.scene_grid.transform.scale(2),
                         acq.scl.shape[1], acq.scl.shape[0])
        for b, arr in acq.dn.items():
            _write_tif(folder / f"{b}.tif", arr, scn.scene_grid if arr.shape == scn.scene_grid.shape else grid20,
                       nodata=0)
        _write_tif(folder / "SCL.tif", acq.scl, grid20, nodata=0)
        d = item_dict(acq, scn, folder)
        pystac.Item.from_dict(d)  # shape check: raises on a malformed item
        items.append(d)
        log.debug("wrote %s", d["id"])
    for tr in scn.truth:
        _write_tif(root / "truth" / f"classmap_{tr.period.label}.tif", tr.classes, scn.truth_grid, nodata=None,
                   cog=False)
    _atomic_json(root / "truth" / "sites.geojson", _sites_geojson(scn))
    _atomic_bytes(root / "truth" / "summary.csv", _summary_csv(scn))
    _atomic_json(root / "aoi.geojson", _aoi_geojson(scn))
    _atomic_json(root / "catalog" / "collection.json", _collection_dict(items, scn))
    _atomic_json(root / "catalog" / "items.json", {"type": "FeatureCollection", "features": items})
    _atomic_json(root / "demo.json", _demo_meta(scn, len(items)))
    log.info("wrote demo dataset: %d items, %d seasons under %s", len(items), len(scn.periods), root)
    return _dataset(root, cfg, scn.truth_grid, list(scn.periods))

"""A run folder's stratified reference sample (``minewatch sample``) and its estimate (``minewatch estimate``).

Strata, per period: the map classes (0 background, 1 cleared land, 2 leaching pond) plus stratum 3, background
within :data:`BUFFER_PX` pixels of mapped footprint. The buffer stratum is where a 10 m map's omission errors
lie; sampling it on its own keeps the omitted area from hiding in the huge background stratum (where a few
hundred points would rarely hit it). The estimators handle strata that differ from map classes (Stehman 2014).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from geo.aoi import read_aoi, region_mask, reproject_geometry
from geo.errors import UsageError
from geo.results.estimate import allocate, draw_sample, estimate_class
from geo.results.export import read_raster, write_csv
from geo.results.styles import write_layer_styles

log = logging.getLogger(__name__)

BUFFER_PX = 2
STRATUM_NAMES = {0: "background", 1: "cleared_land", 2: "leaching_pond", 3: "background_near_footprint"}
CLASS_NAMES = {0: "background", 1: "cleared_land", 2: "leaching_pond"}
LAYER = "sample"
#: Strata whose variance is floored (:func:`geo.results.estimate._ratio`): the small strata at the mapped
#: footprint, where a few dozen points may by chance hold no error. The far-background stratum is not floored: a
#: floor there (n ≈ 200 against ~10⁵ pixels) would swamp every interval; whole missed sites only show when sampled.
SMOOTHED = frozenset({1, 2, 3})


def strata_of(classes: np.ndarray) -> np.ndarray:
    """Stratum raster of a class map: the class, or 3 for background within BUFFER_PX of footprint."""
    fp = classes > 0
    near = ndi.binary_dilation(fp, iterations=BUFFER_PX) & ~fp
    return np.where(near, 3, classes).astype(np.int64)


def _periods(run_dir: Path) -> list[str]:
    man = run_dir / "manifest.json"
    listed = []
    if man.exists():
        listed = json.loads(man.read_text(encoding="utf-8")).get("inputs", {}).get("periods") or []
    found = sorted(p.name[len("classmap_"):-4] for p in run_dir.glob("classmap_*.tif"))
    order = [p for p in listed if p in found] + [p for p in found if p not in listed]
    if not order:
        raise UsageError(f"{run_dir} holds no classmap_<period>.tif; pass the --out folder of a finished "
                         "'minewatch run' or 'minewatch demo'")
    return order


def _region(run_dir: Path, grid) -> np.ndarray:
    """Pixels inside the run's AOI (from the manifest's AOI file), else the whole grid."""
    man = run_dir / "manifest.json"
    path = json.loads(man.read_text(encoding="utf-8")).get("inputs", {}).get("aoi_path") if man.exists() else None
    if path and Path(path).is_file():
        aoi = read_aoi(path)
        return region_mask(reproject_geometry(aoi.geometry, 4326, grid.crs).wkt, grid)
    log.warning("the run's AOI file is not at hand; the whole class-map grid is the sampled population")
    return np.ones(grid.shape, bool)


def population(run_dir: Path, period: str) -> tuple[np.ndarray, np.ndarray, object]:
    """``(strata, inside, grid)`` of one period."""
    classes, grid = read_raster(run_dir / f"classmap_{period}.tif")
    return strata_of(classes), _region(run_dir, grid), grid


def draw_run_sample(run_dir: str | Path, n: int = 300, *, seed: int = 0) -> gpd.GeoDataFrame:
    """A stratified random sample of ``n`` points per period (allocation: :func:`geo.results.estimate.allocate`)."""
    run_dir = Path(run_dir)
    frames = []
    for k, period in enumerate(_periods(run_dir)):
        strata, inside, grid = population(run_dir, period)
        sizes = {h: int(((strata == h) & inside).sum()) for h in STRATUM_NAMES}
        alloc = allocate(sizes, n)
        thin = [STRATUM_NAMES[h] for h, k in alloc.items() if sizes[h] >= 2 and k < 2]
        if thin:
            log.warning("%s: %d points leave %s %s with fewer than 2 each, so the intervals will be undefined or "
                        "widened by a floor; draw more (--n; Olofsson et al. 2014 suggest at least 50 per class)",
                        period, n, "strata" if len(thin) > 1 else "stratum", ", ".join(thin))
        rows, cols, hs = draw_sample(strata, inside, alloc, np.random.default_rng([seed, k]))
        t = grid.transform  # north-up grid
        xs, ys = t.c + t.a * (cols + 0.5), t.f + t.e * (rows + 0.5)
        frames.append(gpd.GeoDataFrame({
            "period": period, "stratum": hs, "stratum_name": [STRATUM_NAMES[int(h)] for h in hs],
            "map_class": np.where(hs == 3, 0, hs), "reference": pd.array([None] * len(hs), dtype="Int64"),
            "labelled_by": "", "row": rows, "col": cols},
            geometry=gpd.points_from_xy(xs, ys), crs=grid.crs))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)


def write_sample(sample: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write the sample as layer ``sample`` with a QGIS style and labelling form (``reference`` as a drop-down)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    sample.to_file(path, layer=LAYER, driver="GPKG")
    write_layer_styles(path, {LAYER: sample_qml()})
    return path


def sample_qml() -> str:
    """QML: points coloured by ``reference`` (unlabelled = hollow), a value-map form for ``reference``."""
    cats = [("", "not labelled yet", "255,255,255,0"), ("0", "0 background", "60,160,60,255"),
            ("1", "1 cleared land", "230,120,40,255"), ("2", "2 leaching pond", "0,200,220,255")]
    cat_xml = "".join(f'<category render="true" symbol="{i}" value="{v}" label="{lab}"/>'
                      for i, (v, lab, _) in enumerate(cats))
    sym_xml = "".join(
        f'<symbol type="marker" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0"><layer class="SimpleMarker" '
        f'enabled="1" locked="0" pass="0"><Option type="Map"><Option name="color" type="QString" value="{c}"/>'
        '<Option name="outline_color" type="QString" value="0,0,0,255"/><Option name="size" type="QString" '
        'value="3"/><Option name="name" type="QString" value="circle"/></Option></layer></symbol>'
        for i, (_, _, c) in enumerate(cats))
    value_map = "".join(f'<Option type="Map"><Option name="{lab}" type="QString" value="{v}"/></Option>'
                        for v, lab, _ in cats[1:])
    ro = "".join(f'<field name="{f}" editable="0"/>' for f in ("period", "stratum", "stratum_name", "map_class"))
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.22.0" styleCategories="Symbology|Fields|Forms">'
            '<renderer-v2 type="categorizedSymbol" attr="reference" symbollevels="0" enableorderby="0" '
            f'forceraster="0"><categories>{cat_xml}</categories><symbols>{sym_xml}</symbols></renderer-v2>'
            '<fieldConfiguration><field name="reference" configurationFlags="None"><editWidget type="ValueMap">'
            f'<config><Option type="Map"><Option name="map" type="List">{value_map}</Option></Option></config>'
            '</editWidget></field></fieldConfiguration>'
            '<aliases><alias field="reference" index="4" name="Reference class (what is really there)"/></aliases>'
            f'<editable>{ro}</editable><editform tolerant="1"></editform><editorlayout>generatedlayout</editorlayout>'
            "</qgis>")


def read_labels(path: str | Path) -> gpd.GeoDataFrame:
    """The labelled sample; every ``reference`` must be 0, 1 or 2."""
    path = Path(path)
    try:
        df = gpd.read_file(path, layer=LAYER)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line cause and fix
        raise UsageError(f"cannot read layer '{LAYER}' of {path} ({exc}); pass the GeoPackage "
                         "'minewatch sample' wrote") from None
    missing = {"period", "stratum", "map_class", "reference"} - set(df.columns)
    if missing:
        raise UsageError(f"{path} lacks field(s) {', '.join(sorted(missing))}; pass the GeoPackage 'minewatch "
                         "sample' wrote")
    ref = pd.to_numeric(df["reference"], errors="coerce")
    bad = ref.isna() | ~ref.isin([0, 1, 2])
    if bad.any():
        raise UsageError(f"{int(bad.sum())} of {len(df)} sample points in {path} have no reference class 0, 1 or 2 "
                         "(first: fid " f"{int(np.flatnonzero(bad.to_numpy())[0]) + 1}); label every point, then rerun")
    df["reference"] = ref.astype(int)
    return df


def estimate_run(run_dir: str | Path, labels: str | Path) -> pd.DataFrame:
    """Error-adjusted areas and accuracies per period and class; writes ``RUN_DIR/estimate.csv``."""
    run_dir = Path(run_dir)
    df = read_labels(labels)
    rows = []
    by = [str(v) for v in df.get("labelled_by", pd.Series(dtype=str)).fillna("").unique() if str(v)]
    labelled_by = "; ".join(by) if by else f"analyst labels in {Path(labels).name}"
    for period in _periods(run_dir):
        d = df[df["period"] == period]
        if not len(d):
            log.warning("no sample points for period %s; it is left out of the estimate", period)
            continue
        strata, inside, grid = population(run_dir, period)
        sizes = {h: float(((strata == h) & inside).sum()) for h in STRATUM_NAMES}
        total_m2 = sum(sizes.values()) * grid.resolution**2
        h, ref, mc = d["stratum"].to_numpy(int), d["reference"].to_numpy(int), d["map_class"].to_numpy(int)
        thin = [STRATUM_NAMES[k] for k, n in sizes.items() if n > 0 and (h == k).sum() < 2]
        if thin:
            log.warning("%s: stratum %s has fewer than 2 labelled points, so its spread is unknown: the intervals "
                        "use a conservative floor there, or are left undefined; label more points (minewatch sample "
                        "--n; Olofsson et al. 2014 suggest at least 50 per class)", period, ", ".join(thin))
        classes = np.where(strata == 3, 0, strata)
        for name, values in (*((n, {c}) for c, n in CLASS_NAMES.items()), ("footprint", {1, 2})):
            e = estimate_class(sizes, h, ref, mc, values, smooth=SMOOTHED)
            p, ua, pa = e["proportion"], e["users_accuracy"], e["producers_accuracy"]
            rows.append({"period": period, "class": name, "area_m2": p.value * total_m2,
                         "area_m2_low": max(0.0, p.low * total_m2), "area_m2_high": p.high * total_m2,
                         "users_accuracy": ua.value, "producers_accuracy": pa.value,
                         "users_accuracy_se": ua.se, "producers_accuracy_se": pa.se,
                         "map_area_m2": float((np.isin(classes, list(values)) & inside).sum()) * grid.resolution**2,
                         "n_sample": int(np.isin(mc, list(values)).sum()), "labelled_by": labelled_by})
    out = pd.DataFrame(rows)
    write_csv(out, run_dir / "estimate.csv")
    return out

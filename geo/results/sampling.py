"""A run folder's stratified reference sample (``minewatch sample``) and its estimate (``minewatch estimate``).

Strata, per period: the map classes (0 background, 1 cleared land, 2 leaching pond) plus stratum 3, background
within :data:`BUFFER_PX` pixels of mapped footprint. The buffer stratum is where a 10 m map's omission errors
lie; sampling it on its own keeps the omitted area from hiding in the huge background stratum (where a few
hundred points would rarely hit it). The estimators handle strata that differ from map classes (Stehman 2014).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from geo.errors import UsageError
from geo.results.estimate import allocate, draw_sample, estimate_class
from geo.results.export import read_raster, write_csv
from geo.results.run_inputs import classmap_digest, read_manifest, run_region as _region
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


def strata_of(classes: np.ndarray, *, legacy: bool = False) -> np.ndarray:
    """Stratum raster of a class map: the class, or 3 for background within BUFFER_PX of footprint.

    Only footprint classes (1, 2) grow the buffer: pixels never observed (255, the class maps' nodata) are no
    footprint, so background next to them stays background; they keep their value and belong to no stratum.
    ``legacy``: the strata samples drawn before this was fixed used (the buffer grew around unobserved pixels too),
    so such a sample is still estimated with the strata it was drawn from.
    """
    fp = classes > 0 if legacy else (classes == 1) | (classes == 2)
    near = ndi.binary_dilation(fp, iterations=BUFFER_PX) & ~fp & (classes == 0)
    return np.where(near, 3, classes).astype(np.int64)


def _periods(run_dir: Path) -> list[str]:
    listed = read_manifest(run_dir).get("inputs", {}).get("periods")
    listed = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    found = sorted(p.name[len("classmap_"):-4] for p in run_dir.glob("classmap_*.tif"))
    order = [p for p in listed if p in found] + [p for p in found if p not in listed]
    if not order:
        raise UsageError(f"{run_dir} holds no classmap_<period>.tif; pass the --out folder of a finished "
                         "'minewatch run' or 'minewatch demo'")
    return order


def read_classmap(run_dir: Path, period: str) -> tuple[np.ndarray, object]:
    """``classmap_<period>.tif`` of a run folder; an unreadable one is :func:`read_raster`'s RasterError naming it."""
    return read_raster(run_dir / f"classmap_{period}.tif")


def population(run_dir: Path, period: str) -> tuple[np.ndarray, np.ndarray, object]:
    """``(strata, inside, grid)`` of one period."""
    classes, grid = read_classmap(run_dir, period)
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


def is_sample_file(path: str | Path) -> bool:
    """Whether ``path`` is a GeoPackage holding only what :func:`write_sample` writes (layer ``sample``, styles)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)) as con:
            names = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
    except (sqlite3.Error, OSError, ValueError):
        return False
    return LAYER in names and names <= {LAYER, "layer_styles"}


def labelled_points(path: str | Path) -> int:
    """How many points of the sample GeoPackage ``path`` carry a reference label (0 when unreadable)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)) as con:
            return int(con.execute(f"SELECT COUNT(*) FROM {LAYER} WHERE reference IS NOT NULL AND "
                                   "TRIM(CAST(reference AS TEXT)) != ''").fetchone()[0])
    except (sqlite3.Error, OSError, ValueError):
        return 0


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


#: Fields a labelled sample must hold: what 'minewatch sample' drew (``row``/``col``: the point's pixel in the class
#: maps) and the analyst's ``reference``.
FIELDS = ("period", "stratum", "map_class", "reference", "row", "col")


def _whole(values: pd.Series) -> np.ndarray:
    """``values`` as float, NaN where missing, not numeric or not a whole number."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(v) & (v == np.round(v)), v, np.nan)


def _fid(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def read_labels(path: str | Path) -> gpd.GeoDataFrame:
    """The labelled sample: drawn points only (valid period, stratum, row, col; no point twice), every
    ``reference`` 0, 1 or 2. Deleted points are allowed; whether the points fit a run is :func:`estimate_run`'s check.
    """
    path = Path(path)
    try:
        df = gpd.read_file(path, layer=LAYER)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line cause and fix
        raise UsageError(f"cannot read layer '{LAYER}' of {path} ({exc}); pass the GeoPackage "
                         "'minewatch sample' wrote") from None
    missing = set(FIELDS) - set(df.columns)
    if missing:
        raise UsageError(f"{path} lacks field(s) {', '.join(sorted(missing))}; pass the GeoPackage 'minewatch "
                         "sample' wrote")
    if not len(df):
        raise UsageError(f"{path} holds no sample points; pass the GeoPackage 'minewatch sample' wrote")
    period = df["period"].astype("string").str.strip()
    stratum, row, col = (_whole(df[f]) for f in ("stratum", "row", "col"))
    added = (period.isna() | (period == "")).to_numpy(dtype=bool, na_value=True) \
        | ~np.isin(stratum, list(STRATUM_NAMES)) | ~(row >= 0) | ~(col >= 0)
    if added.any():
        raise UsageError(f"{int(added.sum())} of {len(df)} sample points in {path} have no valid period, stratum "
                         f"(0-3), row or col (first: fid {_fid(added)}): only points drawn by 'minewatch sample' can "
                         "be used, since points added by hand break the stratified design; delete them (deleting "
                         "drawn points is allowed) or draw a larger sample (--n)")
    key = pd.DataFrame({"period": period.to_numpy(dtype=object), "row": row, "col": col})
    dup = key.duplicated().to_numpy()
    if dup.any():
        raise UsageError(f"{int(dup.sum())} of {len(df)} sample points in {path} repeat the period, row and col of an "
                         f"earlier point (first: fid {_fid(dup)}): a drawn point counts once, and copies would narrow "
                         "the intervals falsely; delete the copies")
    ref = pd.to_numeric(df["reference"], errors="coerce")
    bad = ref.isna() | ~ref.isin([0, 1, 2])
    if bad.any():
        raise UsageError(f"{int(bad.sum())} of {len(df)} sample points in {path} have no reference class 0, 1 or 2 "
                         "(first: fid " f"{_fid(bad.to_numpy())}); label every point, then rerun")
    df["reference"] = ref.astype(int)
    df["period"], df["stratum"] = period.to_numpy(dtype=object), stratum.astype(int)
    df["row"], df["col"], df["map_class"] = row.astype(int), col.astype(int), _whole(df["map_class"])
    return df


def _check_periods(df: pd.DataFrame, periods: list[str], labels: Path, run_dir: Path) -> None:
    """Refuse points of periods the run does not hold (a sample of another run, or edited periods)."""
    foreign = ~df["period"].isin(periods).to_numpy()
    if not foreign.any():
        return
    theirs = ", ".join(sorted(set(df.loc[foreign, "period"]))[:6])
    if foreign.all():
        raise UsageError(f"no sample point in {labels} matches the run's periods ({', '.join(periods)}; the sample "
                         f"holds {theirs}): it was not drawn from {run_dir}; draw one with 'minewatch sample "
                         f"{run_dir} --out SAMPLE.gpkg' and label it")
    raise UsageError(f"{int(foreign.sum())} of {len(df)} sample points in {labels} have a period the run does not "
                     f"hold ({theirs}; first: fid {_fid(foreign)}; the run's periods: {', '.join(periods)}): the "
                     "sample was not drawn from this run or its periods were edited; fix or delete those points")


def _disagree(strata: np.ndarray, d: pd.DataFrame) -> np.ndarray:
    """Points of ``d`` whose stored stratum or map_class is not the stratum raster's at their row/col."""
    r, c = d["row"].to_numpy(int), d["col"].to_numpy(int)
    on = (r < strata.shape[0]) & (c < strata.shape[1])
    h_map = np.full(len(d), -1, np.int64)
    h_map[on] = strata[r[on], c[on]]
    mc_map = np.where(h_map == 3, 0, h_map)
    return ~on | (h_map != d["stratum"].to_numpy(int)) | ~(mc_map == d["map_class"].to_numpy(float))


def _moved(grid, d: gpd.GeoDataFrame) -> np.ndarray:
    """Points of ``d`` whose geometry no longer lies in the pixel at their row/col (moved in QGIS: the analyst then
    labelled another place than the one the estimate weighs). Points without geometry or CRS are not judged."""
    if "geometry" not in d or d.crs is None:
        return np.zeros(len(d), bool)
    pts = d.geometry.to_crs(grid.crs)
    ok = ~(pts.is_empty | pts.isna()).to_numpy()
    x, y = np.full(len(d), np.nan), np.full(len(d), np.nan)
    x[ok], y[ok] = pts[ok].x.to_numpy(), pts[ok].y.to_numpy()
    inv = ~grid.transform
    c, r = inv * (x, y)
    tol = 0.05  # of a pixel: reprojection round trips stay well inside
    with np.errstate(invalid="ignore"):
        off = (np.abs(c - (d["col"].to_numpy(float) + 0.5)) > 0.5 + tol) | (np.abs(r - (d["row"].to_numpy(float) + 0.5))
                                                                           > 0.5 + tol)
    return ok & off


def _period_stats(run_dir: Path, period: str, d: pd.DataFrame) -> tuple[dict, np.ndarray]:
    """Population figures of one period, and which of its points ``d`` disagree with its class map.

    A sample drawn before the buffer stratum stopped growing around unobserved pixels fits the legacy strata
    (:func:`strata_of`); it is estimated with them, the strata it was drawn from.
    """
    classes, grid = read_classmap(run_dir, period)
    if (moved := _moved(grid, d)).any():
        raise UsageError(f"{int(moved.sum())} of {len(d)} sample points of {period} no longer lie in the pixel of "
                         f"their row/col (moved in QGIS? first: fid {int(d.index[moved][0]) + 1}): the estimate weighs the drawn "
                         "pixel, not the place labelled; move them back (or undo the edit) and label the drawn "
                         "place, or delete them")
    strata = strata_of(classes)
    disagree = _disagree(strata, d)
    if disagree.any():
        old = strata_of(classes, legacy=True)
        old_disagree = _disagree(old, d)
        if not old_disagree.any():
            log.warning("%s: the sample was drawn with the strata of an older minewatch (background near unobserved "
                        "pixels counted as near footprint); it is estimated with those strata, as drawn", period)
            strata, disagree = old, old_disagree
        elif old_disagree.sum() < disagree.sum():
            disagree = old_disagree
    del classes
    inside = _region(run_dir, grid)
    classes = np.where(strata == 3, 0, strata)
    stats = {"sizes": {h: float(((strata == h) & inside).sum()) for h in STRATUM_NAMES},
             "px_m2": float(grid.resolution**2),
             "map_px": {name: float((np.isin(classes, list(v)) & inside).sum()) for name, v in _CLASS_SETS}}
    return stats, disagree


_CLASS_SETS = (*((n, {c}) for c, n in CLASS_NAMES.items()), ("footprint", {1, 2}))


def estimate_run(run_dir: str | Path, labels: str | Path) -> pd.DataFrame:
    """Error-adjusted areas and accuracies per period and class; writes ``RUN_DIR/estimate.csv``.

    Every point must be one the run's sample drew: its period one of the run's, its ``stratum`` and ``map_class``
    those of the run's class map at its ``row``/``col`` (recomputed as :func:`draw_run_sample` does). Anything else
    is refused before anything is written.
    """
    run_dir, labels = Path(run_dir), Path(labels)
    df = read_labels(labels)
    periods = _periods(run_dir)
    _check_periods(df, periods, labels, run_dir)
    stats, disagree = {}, np.zeros(len(df), bool)
    for period in periods:
        sel = (df["period"] == period).to_numpy()
        if not sel.any():
            log.warning("no sample points for period %s; it is left out of the estimate", period)
            continue
        stats[period], disagree[sel] = _period_stats(run_dir, period, df[sel])
    if disagree.any():
        raise UsageError(f"{int(disagree.sum())} of {len(df)} sample points in {labels} disagree with the run's class "
                         f"maps at their row/col (stratum or map_class differs, first: fid {_fid(disagree)}): the "
                         f"sample was not drawn from this run ({run_dir}) or was edited; draw one with 'minewatch "
                         f"sample {run_dir} --out SAMPLE.gpkg' and label it (change only 'reference')")
    rows = []
    digests = {period: classmap_digest(read_classmap(run_dir, period)[0]) for period in stats}
    by = [str(v) for v in df.get("labelled_by", pd.Series(dtype=str)).fillna("").unique() if str(v)]
    labelled_by = "; ".join(by) if by else f"analyst labels in {labels.name}"
    for period, st in stats.items():
        d = df[df["period"] == period]
        sizes, px_m2 = st["sizes"], st["px_m2"]
        total_m2 = sum(sizes.values()) * px_m2
        h, ref, mc = d["stratum"].to_numpy(int), d["reference"].to_numpy(int), d["map_class"].to_numpy(int)
        thin = [STRATUM_NAMES[k] for k, n in sizes.items() if n > 0 and (h == k).sum() < 2]
        if thin:
            log.warning("%s: stratum %s has fewer than 2 labelled points, so its spread is unknown: the intervals "
                        "use a conservative floor there, or are left undefined; label more points (minewatch sample "
                        "--n; Olofsson et al. 2014 suggest at least 50 per class)", period, ", ".join(thin))
        for name, values in _CLASS_SETS:
            e = estimate_class(sizes, h, ref, mc, values, smooth=SMOOTHED)
            p, ua, pa = e["proportion"], e["users_accuracy"], e["producers_accuracy"]
            rows.append({"period": period, "class": name, "area_m2": p.value * total_m2,
                         "area_m2_low": max(0.0, p.low * total_m2), "area_m2_high": p.high * total_m2,
                         "users_accuracy": ua.value, "producers_accuracy": pa.value,
                         "users_accuracy_se": ua.se, "producers_accuracy_se": pa.se,
                         "map_area_m2": st["map_px"][name] * px_m2,
                         "n_sample": int(np.isin(mc, list(values)).sum()), "labelled_by": labelled_by,
                         "classmap_sha256": digests[period]})
    out = pd.DataFrame(rows)
    write_csv(out, run_dir / "estimate.csv")
    return out


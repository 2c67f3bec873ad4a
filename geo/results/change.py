"""Change over periods: per-period totals, growth, and site-level change classes.

A period whose clear-pixel fraction is below ``ChangeConfig.min_clear_fraction`` is flagged
``low_confidence``; a change into or out of it is never reported as growth, decline or stable (``trend`` says
"uncertain"): ground it did not see may hide footprint, so a cloudy first season inflates growth just as a cloudy
last season fakes a decline. A period with no scenes has NaN amounts and ``trend`` :data:`NO_DATA`.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geo.config import ChangeConfig  # defined with the run settings
from geo.results.intervals import growth_interval
from geo.stages.input_check import clean_share, is_doubtful

SUMMARY_COLUMNS = [
    "period", "footprint_area_m2", "footprint_area_m2_low", "footprint_area_m2_high",
    "pond_area_m2", "pond_area_m2_low", "pond_area_m2_high", "cleared_area_m2", "cleared_area_m2_low",
    "cleared_area_m2_high", "site_count", "site_count_low", "site_count_high",
    "site_extent_m2", "site_extent_m2_low", "site_extent_m2_high",
    "pond_count", "clear_fraction", "low_confidence", "n_scenes", "model_uncertain_share", "model_doubtful",
    "rules_dropped_m2", "map_users_accuracy", "map_producers_accuracy", "map_check_points",
    "footprint_growth_pct", "footprint_growth_pct_low", "footprint_growth_pct_high",
    "site_count_growth_pct", "site_count_growth_pct_low", "site_count_growth_pct_high",
    "footprint_change_pct_prev", "site_count_change_pct_prev", "trend",
]
#: Footprint user's and producer's accuracy (sample-based, ``minewatch estimate``) a season's map needs to count as
#: checked against reference labels: for a claim's verdict and for a headline without a "MAP NOT CHECKED" caveat.
#: Under it the map invents or misses more than a fifth of the footprint it reports. Set by hand.
MIN_MAP_ACCURACY = 0.8
#: Fewest sample points mapped as footprint that such a check needs in a season: Olofsson et al. (2014) suggest at
#: least 50 per class; with fewer, an accuracy of 1.00 can come from a handful of points.
MIN_CHECK_POINTS = 50
#: Columns that carry a 95 % interval in ``<col>_low`` / ``<col>_high`` (see geo.results.intervals).
INTERVAL_COLUMNS = ("footprint_area_m2", "pond_area_m2", "cleared_area_m2", "site_count", "site_extent_m2")

CHANGE_CLASSES = ("new", "expanded", "persisted", "shrunk", "abandoned", "unseen_before", "unseen_later")
#: A site whose ground the other season saw clear on less than this share is not called new / abandoned there.
MIN_SEEN_SHARE = 0.5


def pct(new: float, old: float) -> float:
    """Percent change from ``old`` to ``new``; NaN when ``old`` is 0."""
    return float((new - old) / old * 100.0) if old else float("nan")


def period_row(period: str, footprints: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *,
               clear_fraction: float, n_scenes: int, intervals: dict | None = None,
               model_uncertain_share: float | None = None, rules_dropped_m2: float | None = None) -> dict:
    """Totals of one period (areas in m², computed in UTM by the caller).

    ``intervals``: optional ``<col>_low`` / ``<col>_high`` values (95 %) for :data:`INTERVAL_COLUMNS`.
    ``model_uncertain_share``: the season's model check (:func:`geo.stages.input_check.season_check`), None if none.
    ``rules_dropped_m2``: the rules footprint the fused map left out (:mod:`geo.stages.rules_check`), None if unknown.
    """
    cls = footprints["class"].to_numpy() if len(footprints) else np.array([], dtype=int)
    area = footprints["area_m2"].to_numpy() if len(footprints) else np.array([])
    return {
        "period": period,
        "footprint_area_m2": float(area.sum()),
        "pond_area_m2": float(area[cls == 2].sum()),
        "cleared_area_m2": float(area[cls == 1].sum()),
        "site_count": int(len(sites)),
        "site_extent_m2": float(sites["extent_area_m2"].sum()) if len(sites) else 0.0,
        "pond_count": int((cls == 2).sum()),
        "clear_fraction": float(clear_fraction),
        "n_scenes": int(n_scenes),
        "model_uncertain_share": _share(model_uncertain_share),
        "rules_dropped_m2": float("nan") if rules_dropped_m2 is None else float(rules_dropped_m2),
        **(intervals or {}),
    }


#: ``trend`` of a season with no scenes (its areas and counts are NaN: unknown, not zero).
NO_DATA = "no data (no scenes)"


def no_data_row(period: str) -> dict:
    """The totals of a season with no scenes: every amount unknown (NaN), no clear pixel, no scene."""
    return {"period": period, **{c: float("nan") for c in (*INTERVAL_COLUMNS, "pond_count")},
            "clear_fraction": 0.0, "n_scenes": 0}


def _yes(v) -> bool:
    """True for a True flag; False for False and for unknown (NA)."""
    return not pd.isna(v) and bool(v)


def doubtful_periods(summary: pd.DataFrame, periods) -> list[str]:
    """Which of ``periods`` the summary flags ``model_doubtful`` (unknown counts as not flagged), in table order."""
    if "model_doubtful" not in summary:
        return []
    return list(dict.fromkeys(p for p, d in zip(summary["period"], summary["model_doubtful"]) if p in periods and _yes(d)))


def headline_caveats(summary: pd.DataFrame, periods) -> list[str]:
    """Why growth between ``periods`` (first and last of a headline) may be wrong, one phrase per cause, for the
    report's headline and the terminal: no scenes, too little clear ground, the model unsure (docs/MODEL_CHECKS.md)."""
    rows = summary[summary["period"].isin(list(periods))]
    out = []
    if none := [str(p) for p, a in zip(rows["period"], rows["footprint_area_m2"]) if pd.isna(a)]:
        out.append(f"NO DATA in {' and '.join(none)}: no scenes, so no area and no growth from or to it")
    low = [f"{p} (clear fraction {c:.2f})" for p, a, c, f in zip(rows["period"], rows["footprint_area_m2"],
                                                                 rows["clear_fraction"], rows["low_confidence"])
           if _yes(f) and pd.notna(a)]
    if low:
        out.append(f"LOW CLEAR COVERAGE in {' and '.join(low)}: ground not seen may hide footprint, so growth from a "
                   "cloudy season is overstated and growth into one understated")
    if unsure := doubtful_periods(summary, periods):
        out.append(f"MODEL UNSURE in {' and '.join(unsure)}: these figures may be off by tens of percent")
    unchecked, weak = map_unchecked(summary, periods)
    if unchecked:
        out.append(f"MAP NOT CHECKED in {' and '.join(unchecked)}: no reference labels, so the interval leaves out sites "
                   "the detector misses or invents ('minewatch sample' + 'minewatch estimate')")
    if weak:
        out.append(f"MAP CHECK FAILED in {' and '.join(weak)}: a check needs footprint user's and producer's accuracy "
                   f"of at least {MIN_MAP_ACCURACY:.2f} from at least {MIN_CHECK_POINTS} footprint points")
    return out


def map_unchecked(summary: pd.DataFrame, periods) -> tuple[list[str], list[str]]:
    """Seasons of ``periods`` with a mapped footprint whose map is not checked against reference labels (no
    ``map_users_accuracy``), and those whose check fails: footprint user's or producer's accuracy under
    :data:`MIN_MAP_ACCURACY` (``"2022-23 (user's 0.62, producer's 0.91)"``), or fewer than :data:`MIN_CHECK_POINTS`
    sample points mapped as footprint (``map_check_points``; unknown in a hand-made table, then not held against it)."""
    unchecked, weak = [], []
    for _, r in summary[summary["period"].isin(list(periods))].iterrows():
        if pd.isna(r["footprint_area_m2"]):
            continue  # no data: said by its own caveat
        ua, pa, n = map_check_values(r)
        if np.isnan(ua) and np.isnan(pa):
            unchecked.append(str(r["period"]))
        elif not (ua >= MIN_MAP_ACCURACY and pa >= MIN_MAP_ACCURACY):
            weak.append(f"{r['period']} (user's {ua:.2f}, producer's {pa:.2f})")
        elif n < MIN_CHECK_POINTS:  # NaN (unknown) compares False
            weak.append(f"{r['period']} (only {n:.0f} footprint points)")
    return unchecked, weak


def map_check_values(row) -> tuple[float, float, float]:
    """A summary row's map check: footprint user's and producer's accuracy and the sample points mapped as
    footprint, each NaN when absent or not a finite number."""
    return tuple(_num(row.get(k)) for k in ("map_users_accuracy", "map_producers_accuracy", "map_check_points"))


def _num(v) -> float:
    """A float, NaN for anything that is not a finite number (a hand-edited table)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f if np.isfinite(f) else float("nan")


def _share(v) -> float:
    """A season's ``model_uncertain_share`` as a float in 0-1, NaN when absent or not a share (an edited file)."""
    f = clean_share(v)
    return float("nan") if f is None else f


def summarize(rows: list[dict], config: ChangeConfig = ChangeConfig()) -> pd.DataFrame:
    """Summary table, one row per period in the given order, with growth columns.

    ``*_growth_pct`` compare with the first period, ``*_change_pct_prev`` with the previous one.
    """
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    df["low_confidence"] = df["clear_fraction"] < config.min_clear_fraction
    for col in ("model_uncertain_share", "rules_dropped_m2", "map_users_accuracy", "map_producers_accuracy",
                "map_check_points"):
        if col not in df:
            df[col] = float("nan")
    df["model_uncertain_share"] = [_share(v) for v in df["model_uncertain_share"]]
    # unknown (rules, too few pixels, older tasks) stays empty: not "not doubtful"
    df["model_doubtful"] = pd.array([None if np.isnan(v) else is_doubtful(v)
                                     for v in df["model_uncertain_share"]], dtype="boolean")
    for col in INTERVAL_COLUMNS:  # rows without intervals (e.g. a period with no class map) get a zero-width one
        for end in ("low", "high"):
            df[f"{col}_{end}"] = df[f"{col}_{end}"].fillna(df[col]) if f"{col}_{end}" in df else df[col]
    first = df.iloc[0]
    for col, name in (("footprint_area_m2", "footprint_growth_pct"), ("site_count", "site_count_growth_pct")):
        df[name] = [pct(v, first[col]) for v in df[col]]
        ivs = [growth_interval(first[col], first[f"{col}_low"], first[f"{col}_high"], r[col], r[f"{col}_low"],
                               r[f"{col}_high"]) for _, r in df.iterrows()]
        df[f"{name}_low"] = [a for a, _ in ivs]
        df[f"{name}_high"] = [b for _, b in ivs]
        if np.isfinite(df.loc[0, name]):  # the first period against itself: exactly 0
            df.loc[0, [f"{name}_low", f"{name}_high"]] = 0.0
    prev_fp = df["footprint_area_m2"].shift(1)
    prev_sc = df["site_count"].shift(1)
    df["footprint_change_pct_prev"] = [pct(v, p) if pd.notna(p) else float("nan") for v, p in zip(df["footprint_area_m2"], prev_fp)]
    df["site_count_change_pct_prev"] = [pct(v, p) if pd.notna(p) else float("nan") for v, p in zip(df["site_count"], prev_sc)]
    trends = []
    for i, r in df.iterrows():
        d = r["footprint_change_pct_prev"]
        low_cover = r["low_confidence"] or (i > 0 and df.loc[i - 1, "low_confidence"])
        if pd.isna(r["footprint_area_m2"]):
            trends.append(NO_DATA)
        elif i == 0:
            trends.append("baseline")
        elif np.isnan(d):
            trends.append("n/a")
        elif low_cover:
            # unseen ground hides footprint: a cloudy earlier season inflates growth as a cloudy later one fakes
            # decline, and "stable" is no safer (what the clouds hid may have grown)
            trends.append("uncertain (low clear coverage)")
        elif _yes(r["model_doubtful"]) or _yes(df.loc[i - 1, "model_doubtful"]):
            trends.append("uncertain (model unsure)")
        elif d > config.expand_ratio * 100:
            trends.append("growth")
        elif d < -config.expand_ratio * 100:
            trends.append("decline")
        else:
            trends.append("stable")
    df["trend"] = trends
    return df[SUMMARY_COLUMNS]


def seen_share(geom, seen) -> float:
    """Share of the pixels under ``geom`` (touched) that a season saw clear; ``seen`` = (bool raster, its GeoGrid)."""
    import rasterio.features
    from affine import Affine

    mask, grid = seen
    # only the site's own window (+1 px for all_touched) is rasterised: a full-AOI mask per site would be a hot path
    x0, y0, x1, y1 = geom.bounds
    cols, rows = zip(*(~grid.transform * xy for xy in ((x0, y0), (x1, y1))))
    r0, r1 = max(int(np.floor(min(rows))) - 1, 0), min(int(np.ceil(max(rows))) + 1, mask.shape[0])
    c0, c1 = max(int(np.floor(min(cols))) - 1, 0), min(int(np.ceil(max(cols))) + 1, mask.shape[1])
    if r0 >= r1 or c0 >= c1:
        return 1.0  # no pixel under the site (as for an empty mask below): nothing says it was hidden
    sub = mask[r0:r1, c0:c1]
    inside = rasterio.features.geometry_mask([geom], out_shape=sub.shape, invert=True, all_touched=True,
                                             transform=grid.transform * Affine.translation(c0, r0))
    n = int(inside.sum())
    return float(sub[inside].sum()) / n if n else 1.0


def site_changes(prev: gpd.GeoDataFrame, curr: gpd.GeoDataFrame, *, period_from: str, period_to: str,
                 config: ChangeConfig = ChangeConfig(), events: dict[int, dict] | None = None,
                 seen_from=None, seen_to=None) -> gpd.GeoDataFrame:
    """Classify sites between two periods: new, expanded, persisted, shrunk (in ``curr``) and abandoned (in ``prev``).

    Sites are matched when their extents intersect. Both frames must share one projected CRS and, for
    ``site_id`` to name one site in both periods, carry the stable ids of :func:`geo.results.tracking.track_sites`.
    ``events`` (stable id → ``merged_from`` / ``split_from``, from the tracker) fill the columns of those names.
    ``seen_from`` / ``seen_to``: (bool raster, GeoGrid in the frames' CRS) of the pixels each season saw clear.
    A site missing from a season that saw less than :data:`MIN_SEEN_SHARE` of its ground is not "new" but
    ``unseen_before`` (its ``footprint_from_m2`` NaN), or not "abandoned" but ``unseen_later`` (``footprint_to_m2``
    NaN): clouds hid it, and nothing says whether it was there.
    """
    events = events or {}
    crs = curr.crs if curr.crs is not None else prev.crs
    records = []
    pg = prev.geometry.values if len(prev) else np.array([])
    cg = curr.geometry.values if len(curr) else np.array([])
    matched_prev: set[int] = set()
    tree = shapely.STRtree(pg) if len(pg) else None
    for j in range(len(curr)):
        hits = [int(i) for i in tree.query(cg[j], predicate="intersects")] if tree is not None else []
        matched_prev.update(hits)
        a_to = float(curr.iloc[j]["footprint_area_m2"])
        a_from = float(prev.iloc[hits]["footprint_area_m2"].sum()) if hits else 0.0
        if not hits:
            unseen = seen_from is not None and seen_share(cg[j], seen_from) < MIN_SEEN_SHARE
            change = "unseen_before" if unseen else "new"
            a_from = float("nan") if unseen else a_from
        elif a_to > a_from * (1 + config.expand_ratio):
            change = "expanded"
        elif a_to < a_from * (1 - config.expand_ratio):
            change = "shrunk"
        else:
            change = "persisted"
        records.append({"period_from": period_from, "period_to": period_to, "change": change,
                        "site_id": int(curr.iloc[j]["site_id"]), "footprint_from_m2": a_from,
                        "footprint_to_m2": a_to, **_event(events, int(curr.iloc[j]["site_id"])), "geometry": cg[j]})
    for i in range(len(prev)):
        if i not in matched_prev:
            unseen = seen_to is not None and seen_share(pg[i], seen_to) < MIN_SEEN_SHARE
            records.append({"period_from": period_from, "period_to": period_to,
                            "change": "unseen_later" if unseen else "abandoned",
                            "site_id": int(prev.iloc[i]["site_id"]),
                            "footprint_from_m2": float(prev.iloc[i]["footprint_area_m2"]),
                            "footprint_to_m2": float("nan") if unseen else 0.0, "merged_from": "", "split_from": "",
                            "geometry": pg[i]})
    cols = ["period_from", "period_to", "change", "site_id", "footprint_from_m2", "footprint_to_m2", "merged_from",
            "split_from", "geometry"]
    if not records:
        return gpd.GeoDataFrame({c: [] for c in cols[:-1]}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return gpd.GeoDataFrame(records, geometry="geometry", crs=crs)[cols]


def _event(events: dict[int, dict], site_id: int) -> dict:
    e = events.get(site_id, {})
    return {"merged_from": ",".join(str(i) for i in e.get("merged_from", [])),
            "split_from": str(e["split_from"]) if e.get("split_from") is not None else ""}

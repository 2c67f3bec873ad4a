"""Change over periods: per-period totals, growth, and site-level change classes.

A period whose clear-pixel fraction is below ``ChangeConfig.min_clear_fraction`` is flagged
``low_confidence``; its decreases are never reported as shrinkage (``trend`` says "uncertain").
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geo.config import ChangeConfig  # defined with the run settings

SUMMARY_COLUMNS = [
    "period", "footprint_area_m2", "pond_area_m2", "cleared_area_m2", "site_count", "site_extent_m2",
    "pond_count", "clear_fraction", "low_confidence", "n_scenes",
    "footprint_growth_pct", "site_count_growth_pct", "footprint_change_pct_prev", "site_count_change_pct_prev", "trend",
]

CHANGE_CLASSES = ("new", "expanded", "persisted", "shrunk", "abandoned")


def pct(new: float, old: float) -> float:
    """Percent change from ``old`` to ``new``; NaN when ``old`` is 0."""
    return float((new - old) / old * 100.0) if old else float("nan")


def period_row(period: str, footprints: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *,
               clear_fraction: float, n_scenes: int) -> dict:
    """Totals of one period (areas in m², computed in UTM by the caller)."""
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
    }


def summarize(rows: list[dict], config: ChangeConfig = ChangeConfig()) -> pd.DataFrame:
    """Summary table, one row per period in the given order, with growth columns.

    ``*_growth_pct`` compare with the first period, ``*_change_pct_prev`` with the previous one.
    """
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    df["low_confidence"] = df["clear_fraction"] < config.min_clear_fraction
    first = df.iloc[0]
    df["footprint_growth_pct"] = [pct(v, first["footprint_area_m2"]) for v in df["footprint_area_m2"]]
    df["site_count_growth_pct"] = [pct(v, first["site_count"]) for v in df["site_count"]]
    prev_fp = df["footprint_area_m2"].shift(1)
    prev_sc = df["site_count"].shift(1)
    df["footprint_change_pct_prev"] = [pct(v, p) if pd.notna(p) else float("nan") for v, p in zip(df["footprint_area_m2"], prev_fp)]
    df["site_count_change_pct_prev"] = [pct(v, p) if pd.notna(p) else float("nan") for v, p in zip(df["site_count"], prev_sc)]
    trends = []
    for i, r in df.iterrows():
        d = r["footprint_change_pct_prev"]
        if i == 0:
            trends.append("baseline")
        elif np.isnan(d):
            trends.append("n/a")
        elif d < -config.expand_ratio * 100 and (r["low_confidence"] or df.loc[i - 1, "low_confidence"]):
            trends.append("uncertain (low clear coverage)")
        elif d > config.expand_ratio * 100:
            trends.append("growth")
        elif d < -config.expand_ratio * 100:
            trends.append("decline")
        else:
            trends.append("stable")
    df["trend"] = trends
    return df[SUMMARY_COLUMNS]


def site_changes(prev: gpd.GeoDataFrame, curr: gpd.GeoDataFrame, *, period_from: str, period_to: str,
                 config: ChangeConfig = ChangeConfig()) -> gpd.GeoDataFrame:
    """Classify sites between two periods: new, expanded, persisted, shrunk (in ``curr``) and abandoned (in ``prev``).

    Sites are matched when their extents intersect. Both frames must share one projected CRS.
    """
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
            change = "new"
        elif a_to > a_from * (1 + config.expand_ratio):
            change = "expanded"
        elif a_to < a_from * (1 - config.expand_ratio):
            change = "shrunk"
        else:
            change = "persisted"
        records.append({"period_from": period_from, "period_to": period_to, "change": change,
                        "site_id": int(curr.iloc[j]["site_id"]), "footprint_from_m2": a_from,
                        "footprint_to_m2": a_to, "geometry": cg[j]})
    for i in range(len(prev)):
        if i not in matched_prev:
            records.append({"period_from": period_from, "period_to": period_to, "change": "abandoned",
                            "site_id": int(prev.iloc[i]["site_id"]),
                            "footprint_from_m2": float(prev.iloc[i]["footprint_area_m2"]),
                            "footprint_to_m2": 0.0, "geometry": pg[i]})
    cols = ["period_from", "period_to", "change", "site_id", "footprint_from_m2", "footprint_to_m2", "geometry"]
    if not records:
        return gpd.GeoDataFrame({c: [] for c in cols[:-1]}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return gpd.GeoDataFrame(records, geometry="geometry", crs=crs)[cols]

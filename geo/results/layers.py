"""What every output layer carries beyond geometry: season dates and one confidence unit.

- ``period_start`` / ``period_end`` (Date fields) on every footprint, site and change feature, so QGIS's temporal
  controller (and any GIS that reads OGR dates) can step through the seasons. A change record between two seasons
  is dated with the *later* season (the state it describes).
- Confidence in files is always ``confidence_pct``: percent, 0–100 (vectors: mean over the polygon, one decimal;
  rasters: uint8 with 255 = not observed). In memory, :func:`geo.stages.vectorize.polygonize` works in 0–1.
"""

from __future__ import annotations

import datetime as dt
import re

import geopandas as gpd
import numpy as np

from geo.periods import dry_season

_SEASON = re.compile(r"^(\d{4})-(\d{2})$")
_INTERVAL = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})$")


def period_dates(label: str) -> tuple[dt.date, dt.date]:
    """First and last day of a period label: ``2019-20`` (dry season, 1 Nov–30 Apr) or ``2023-11-01_2024-04-30``.

    An unrecognised label gets 1 January–31 December of its first four-digit year, else 1970 (logged by no one:
    minewatch only makes the two forms above).
    """
    m = _SEASON.match(label)
    if m and (int(m.group(1)) + 1) % 100 == int(m.group(2)):
        p = dry_season(int(m.group(1)))
        return p.start, p.end
    m = _INTERVAL.match(label)
    if m:
        return dt.date.fromisoformat(m.group(1)), dt.date.fromisoformat(m.group(2))
    y = re.search(r"\d{4}", label)
    year = int(y.group(0)) if y else 1970
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def with_period(gdf: gpd.GeoDataFrame, label: str, *, date_from: str | None = None) -> gpd.GeoDataFrame:
    """``gdf`` with ``period`` (text), ``period_start`` and ``period_end`` (dates) set for season ``label``.

    ``date_from``: a column holding the label per row (e.g. ``period_to`` of change records) instead of ``label``.
    """
    gdf = gdf.copy()
    if date_from is not None:
        labels = gdf[date_from].astype(str).tolist()
        dates = [period_dates(v) for v in labels]
        gdf["period_start"] = [d[0] for d in dates]
        gdf["period_end"] = [d[1] for d in dates]
        return gdf
    start, end = period_dates(label)
    gdf["period"] = label
    gdf["period_start"] = [start] * len(gdf)
    gdf["period_end"] = [end] * len(gdf)
    return gdf


def confidence_pct(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Replace polygonize's ``confidence`` (0–1) with ``confidence_pct`` (0–100, one decimal) in place of it."""
    if "confidence" not in gdf.columns:
        return gdf
    gdf = gdf.copy()
    pct = np.round(gdf["confidence"].to_numpy(dtype=np.float64) * 100.0, 1)
    cols = list(gdf.columns)
    gdf.insert(cols.index("confidence"), "confidence_pct", pct)
    return gdf.drop(columns="confidence")

"""Summaries whose maps were checked against reference labels, as ``minewatch estimate`` leaves them."""

from __future__ import annotations

import pandas as pd


def checked(summary: pd.DataFrame, periods=None, ua: float = 0.9, pa: float = 0.9, n: float = 74) -> pd.DataFrame:
    """``summary`` with the footprint user's and producer's accuracy of a sample-based estimate from ``n`` points
    mapped as footprint in ``periods`` (default: every season), the columns ``geo.results.outputs`` fills from
    ``estimate.csv``."""
    out = summary.copy()
    sel = out["period"].isin(list(periods)) if periods is not None else slice(None)
    out.loc[sel, "map_users_accuracy"] = ua
    out.loc[sel, "map_producers_accuracy"] = pa
    out.loc[sel, "map_check_points"] = n
    return out

"""Sample-based estimate tables for tests, as ``minewatch estimate`` writes ``estimate.csv``."""

from __future__ import annotations

import pandas as pd


def checked(periods=("2020-21", "2021-22", "2022-23"), ua=0.9, pa=0.9):
    """An estimate.csv as 'minewatch estimate' writes it: the map checked against reference labels in ``periods``."""
    rows = [dict(period=p, **{"class": c}, area_m2=1e6, area_m2_low=0.9e6, area_m2_high=1.1e6,
                 users_accuracy=ua if c == "footprint" else 0.99, producers_accuracy=pa if c == "footprint" else 0.99)
            for p in periods for c in ("background", "cleared_land", "leaching_pond", "footprint")]
    return pd.DataFrame(rows)

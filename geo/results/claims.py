"""Published claims about rare-earth mining growth in Kachin, and their measured equivalents.

Each claim keeps its own definition: Global Witness counted mining *sites*; Myanmar Witness measured
the *extent* of sites. minewatch compares a claim with the matching column of its summary table.
A calendar year Y is matched with the dry season that ends in Y (season ``Y-1``-``Y``: Nov Y-1 – Apr Y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Claim:
    """One published figure.

    Attributes:
        source: who published it.
        definition: what was measured, in the source's terms.
        metric: the summary column that measures the same thing (``site_count``, ``site_extent_m2``, ...).
        year_from: first year of the comparison.
        year_to: last year of the comparison.
        figure: the published figure as text.
        growth_pct: the published growth in percent.
    """

    source: str
    definition: str
    metric: str
    year_from: int
    year_to: int
    figure: str
    growth_pct: float


CLAIMS: tuple[Claim, ...] = (
    Claim("Global Witness (2024)", "number of rare-earth mining sites", "site_count", 2021, 2023,
          "+40% mining sites", 40.0),
    Claim("Myanmar Witness (2024)", "area of mining sites (site extent)", "site_extent_m2", 2018, 2024,
          "260 → 467 km²", (467 - 260) / 260 * 100),
)


def season_for_year(year: int) -> str:
    """Label of the dry season that ends in ``year`` (e.g. 2021 → ``"2020-21"``)."""
    return f"{year - 1}-{year % 100:02d}"


def compare_claims(summary: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """Hold each claim against the run's measurement of the same quantity.

    When the run covers both seasons of a claim, the measured growth is between exactly those seasons;
    otherwise it is between the run's first and last period and ``matched_periods`` says so.
    """
    rows = []
    periods = list(summary["period"]) if len(summary) else []
    for c in claims:
        a, b = season_for_year(c.year_from), season_for_year(c.year_to)
        exact = a in periods and b in periods
        if not periods:
            rows.append({"source": c.source, "definition": c.definition, "claim": c.figure,
                         "claim_period": f"{c.year_from}→{c.year_to}", "claimed_growth_pct": c.growth_pct,
                         "measured_metric": c.metric, "matched_periods": "none", "measured_growth_pct": np.nan,
                         "difference_pp": np.nan, "verdict": "no data"})
            continue
        pa, pb = (a, b) if exact else (periods[0], periods[-1])
        va = float(summary.loc[summary["period"] == pa, c.metric].iloc[0])
        vb = float(summary.loc[summary["period"] == pb, c.metric].iloc[0])
        low = bool(summary.loc[summary["period"].isin([pa, pb]), "low_confidence"].any())
        growth = (vb - va) / va * 100 if va else np.nan
        diff = growth - c.growth_pct if np.isfinite(growth) else np.nan
        if not np.isfinite(growth):
            verdict = "cannot compare (zero in first period)"
        elif low:
            verdict = "uncertain: low clear coverage"
        elif not exact:
            verdict = "different periods: indicative only"
        elif growth >= c.growth_pct - 10:
            verdict = "consistent with or above the claim"
        else:
            verdict = "below the claim"
        rows.append({"source": c.source, "definition": c.definition, "claim": c.figure,
                     "claim_period": f"{c.year_from}→{c.year_to}", "claimed_growth_pct": c.growth_pct,
                     "measured_metric": c.metric, "matched_periods": f"{pa}→{pb}", "measured_growth_pct": growth,
                     "difference_pp": diff, "verdict": verdict})
    return pd.DataFrame(rows)

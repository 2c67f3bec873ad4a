"""Published claims about rare-earth mining growth in Kachin, and whether a run can be held against them.

Each claim keeps its own region, definition, period and citation. A run is compared with a claim only when

1. the imagery is real (a simulated run never gives a verdict on a real publication),
2. the run's AOI covers at least :data:`MIN_COVER` of the claim's region, and
3. the run holds both seasons of the claim (a calendar year Y is the dry season that ends in Y: ``Y-1``-``Y``),
4. neither season is flagged low confidence (too little clear coverage) nor model-doubtful,
5. where the claim states absolute values, the run's values lie within :data:`MAX_SCALE_GAP` times of them (a
   larger gap means the two measure different regions or definitions), and
6. the map was checked against reference labels in both seasons: a sample-based estimate (``estimate.csv``, from
   ``minewatch sample`` + ``minewatch estimate``) gives its footprint user's and producer's accuracy of at least
   :data:`geo.results.change.MIN_MAP_ACCURACY` there, from at least :data:`geo.results.change.MIN_CHECK_POINTS`
   sample points mapped as footprint. The growth interval covers pixel, boundary and
   unobserved-ground error, not sites the detector misses or invents; on scenes of generators written blind to
   minewatch its growth was off by tens of percentage points (model card), so an unchecked map gets no verdict.

Otherwise the row says "not comparable" and why. A comparable claim's verdict uses the measured growth's 95 %
interval: *consistent* when the claimed growth lies inside it, *below* / *above* when the whole interval lies
below / above the claim. Absolute measured values stand beside the claimed ones so that a scale mismatch shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from pyproj import Geod
from shapely.geometry import box

from geo.results.change import (MIN_CHECK_POINTS, MIN_MAP_ACCURACY, doubtful_periods, map_check_values,
                                map_unchecked)
from geo.results.intervals import growth_interval

#: The claim region's share that a run's AOI must cover for a verdict.
MIN_COVER = 0.5

#: A claim's stated absolute value and the run's value of the same metric must lie within this factor of each
#: other for a verdict (:func:`scale_gap`).
MAX_SCALE_GAP = 3.0

#: Chipwi–Pangwa belt as drawn in aoi/chipwi_pangwa.geojson (an APPROXIMATE box around Kachin Special Region 1's
#: mining area, not an administrative boundary).
CHIPWI_PANGWA = box(98.08, 25.54, 98.52, 26.05)


@dataclass(frozen=True)
class Claim:
    """One published figure.

    Attributes:
        publisher: who published it.
        title: the publication's title (``unverified`` marks text we could not check).
        date: publication date (ISO, as precise as known).
        url: where it is published.
        region_name: the region the figure is about, in the source's terms.
        region: that region as a polygon (EPSG:4326 lon/lat); approximate where the source gives no map.
        definition: ``site_count``, ``site_extent`` or ``footprint`` (see the report's definitions).
        metric: the summary column that measures the same thing.
        year_from, year_to: the calendar years compared.
        figure: the published figure as text.
        growth_pct: the published growth in percent.
        value_from, value_to: the published absolute values in the metric's unit (m² or sites), None when the
            source gives only a growth.
        unverified: the citation fields (``title``, ``date``, ``url``) written from memory and not checked
            against the publication; the report and claims.csv say so.
    """

    publisher: str
    title: str
    date: str
    url: str
    region_name: str
    region: object
    definition: str
    metric: str
    year_from: int
    year_to: int
    figure: str
    growth_pct: float
    value_from: float | None = None
    value_to: float | None = None
    unverified: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"{self.publisher} ({self.date[:4]})"

    @property
    def citation(self) -> str:
        return f"{self.publisher}, \u201c{self.title}\u201d, {self.date}, {self.url}"


CLAIMS: tuple[Claim, ...] = (
    Claim("Global Witness", "Myanmar's poisoned mountains: The toxic rare earth mining industry at the heart of the "
          "global green energy transition", "2024-05",
          "https://www.globalwitness.org/en/campaigns/natural-resource-governance/myanmars-poisoned-mountains/",
          "Kachin Special Region 1 (Chipwi and Pangwa townships)", CHIPWI_PANGWA, "site_count", "site_count",
          2021, 2023, "+40% mining sites", 40.0, unverified=("date", "url")),
    Claim("Myanmar Witness", "report on rare earth mining in Kachin State (title unverified)", "2024",
          "https://www.myanmarwitness.org/ (report URL unverified)",
          "Kachin State rare-earth mining belt (approximated by the Chipwi–Pangwa belt)", CHIPWI_PANGWA,
          "site_extent", "site_extent_m2", 2018, 2024, "260 → 467 km²", (467 - 260) / 260 * 100,
          260e6, 467e6, unverified=("title", "date", "url")),
)

CLAIM_COLUMNS = ["source", "publisher", "title", "date", "url", "unverified", "region", "definition", "claim",
                 "claim_period",
                 "claimed_from", "claimed_to", "claimed_growth_pct", "measured_metric", "matched_periods",
                 "measured_from", "measured_to", "measured_growth_pct", "measured_low", "measured_high",
                 "aoi_cover_pct", "map_check", "comparable", "reason", "verdict"]

_GEOD = Geod(ellps="WGS84")


def season_for_year(year: int) -> str:
    """Label of the dry season that ends in ``year`` (e.g. 2021 → ``"2020-21"``)."""
    return f"{year - 1}-{year % 100:02d}"


def geodesic_area(geom) -> float:
    """Area in m² of a lon/lat geometry on the WGS84 ellipsoid."""
    return abs(_GEOD.geometry_area_perimeter(geom)[0]) if geom is not None and not geom.is_empty else 0.0


def grid_outline_wgs84(grid):
    """The outline of a raster grid as a lon/lat polygon (the run's coverage when its AOI is not at hand)."""
    from geo.aoi import reproject_geometry

    return reproject_geometry(box(*grid.bounds), grid.crs, 4326)


def cover_fraction(aoi_wgs84, region) -> float:
    """Share of ``region``'s area inside the AOI (both lon/lat)."""
    if aoi_wgs84 is None:
        return 0.0
    total = geodesic_area(region)
    return geodesic_area(shapely.intersection(shapely.make_valid(aoi_wgs84), region)) / total if total else 0.0


def _fmt_abs(metric: str, v: float | None) -> str:
    if v is None or not np.isfinite(v):
        return "not stated"
    return f"{v / 1e6:.3g} km²" if metric.endswith("_m2") else f"{v:.0f} sites"


def scale_gap(c: Claim, measured_from: float, measured_to: float) -> str:
    """Why a claim's absolute values show it measures something else than the run ("" when they do not).

    A claim that states absolute values (Myanmar Witness: 260 → 467 km²) is held against the run only when the
    run's values of the same metric lie within :data:`MAX_SCALE_GAP` times of them at both ends; further apart,
    the two count different things (another region, another definition of a site's area), and a growth verdict
    between them would compare two unrelated quantities.
    """
    for claimed, measured, year in ((c.value_from, measured_from, c.year_from), (c.value_to, measured_to, c.year_to)):
        if claimed is None or not claimed > 0 or not np.isfinite(measured):
            continue
        ratio = measured / claimed
        if not (1 / MAX_SCALE_GAP <= ratio <= MAX_SCALE_GAP):
            times = f"1/{1 / ratio:.3g}" if 0 < ratio < 1 else "0" if ratio == 0 else f"{ratio:.3g}"
            return (f"the run measures {_fmt_abs(c.metric, measured)} in {year} where the claim states "
                    f"{_fmt_abs(c.metric, claimed)} ({times} of it; more than {MAX_SCALE_GAP:g}x apart): the two "
                    "measure different regions or definitions, so their growths are not compared")
    return ""


def map_check(summary: pd.DataFrame, seasons: tuple[str, str]) -> tuple[str, str]:
    """``(text, reason)`` of the map's check against reference labels in ``seasons``: the footprint user's and
    producer's accuracy per season (``summary``'s ``map_users_accuracy`` / ``map_producers_accuracy``, from
    ``minewatch estimate``), and why it does not allow a verdict (``""`` when it does; :data:`MIN_MAP_ACCURACY`)."""
    parts = []
    for p in seasons:
        r = summary[summary["period"] == p]
        if not len(r):
            parts.append(f"{p}: not in the run")
            continue
        ua, pa, n = map_check_values(r.iloc[0])
        parts.append(f"{p}: not checked" if np.isnan(ua) and np.isnan(pa)
                     else f"{p}: user's {ua:.2f}, producer's {pa:.2f}" + ("" if np.isnan(n) else f" ({n:.0f} points)"))
    unchecked, weak = map_unchecked(summary, seasons)
    if unchecked:
        return "; ".join(parts), (
            f"the map is not checked against reference labels in {' and '.join(unchecked)} (run 'minewatch sample' and "
            "'minewatch estimate'): its interval leaves out sites the detector misses or invents, and on imagery it "
            "was not tuned to its growth was off by tens of percentage points")
    if weak:
        return "; ".join(parts), (f"the map's check against reference labels fails in {' and '.join(weak)}: a verdict "
                                  f"needs footprint user's and producer's accuracy of at least {MIN_MAP_ACCURACY:.2f} "
                                  f"from at least {MIN_CHECK_POINTS} footprint points")
    return "; ".join(parts), ""


def compare_claims(summary: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS, *, aoi_wgs84=None,
                   simulated: bool = False) -> pd.DataFrame:
    """Hold each claim against the run's measurement of the same quantity, where the two are comparable."""
    rows = []
    periods = list(summary["period"]) if len(summary) else []
    for c in claims:
        a, b = season_for_year(c.year_from), season_for_year(c.year_to)
        cover = cover_fraction(aoi_wgs84, c.region)
        row = {"source": c.source, "publisher": c.publisher, "title": c.title, "date": c.date, "url": c.url,
               "unverified": ",".join(c.unverified),
               "region": c.region_name, "definition": c.definition, "claim": c.figure,
               "claim_period": f"{c.year_from}→{c.year_to}", "claimed_from": _fmt_abs(c.metric, c.value_from),
               "claimed_to": _fmt_abs(c.metric, c.value_to), "claimed_growth_pct": c.growth_pct,
               "measured_metric": c.metric, "matched_periods": "none", "measured_from": "", "measured_to": "",
               "measured_growth_pct": np.nan, "measured_low": np.nan, "measured_high": np.nan,
               "aoi_cover_pct": 100.0 * cover}
        row["map_check"], unchecked = map_check(summary, (a, b))
        have = a in periods and b in periods
        if have:
            ra = summary.loc[summary["period"] == a].iloc[0]
            rb = summary.loc[summary["period"] == b].iloc[0]
            va, vb = float(ra[c.metric]), float(rb[c.metric])
            lo_col, hi_col = f"{c.metric}_low", f"{c.metric}_high"
            ia = (float(ra.get(lo_col, va)), float(ra.get(hi_col, va)))
            ib = (float(rb.get(lo_col, vb)), float(rb.get(hi_col, vb)))
            lo, hi = growth_interval(va, *ia, vb, *ib)
            row.update(matched_periods=f"{a}→{b}", measured_from=_fmt_abs(c.metric, va),
                       measured_to=_fmt_abs(c.metric, vb),
                       measured_growth_pct=(vb - va) / va * 100 if va else np.nan, measured_low=lo, measured_high=hi)
        reasons = []
        if simulated:
            reasons.append("the imagery is simulated")
        if cover < MIN_COVER:
            reasons.append(f"the run's AOI covers {100 * cover:.2g} % of the claim's region "
                           f"({c.region_name}); at least {100 * MIN_COVER:.0f} % is needed")
        if not have:
            reasons.append(f"the run does not hold both claim seasons {a} and {b}")
        elif none := [p for p, v in ((a, va), (b, vb)) if not np.isfinite(v)]:
            reasons.append(f"no scenes in {' and '.join(none)}: nothing was measured there")
        elif bool(summary.loc[summary["period"].isin([a, b]), "low_confidence"].any()):
            reasons.append(f"too little clear coverage in {a} or {b}")
        elif unsure := doubtful_periods(summary, (a, b)):
            reasons.append(f"the model was unsure of most of what it mapped in {' and '.join(unsure)} (model_doubtful)")
        elif not np.isfinite(row["measured_low"]):
            reasons.append(f"nothing measured in {a}: growth is undefined")
        elif gap := scale_gap(c, va, vb):
            reasons.append(gap)
        if have and unchecked:
            reasons.append(unchecked)
        if reasons:
            row.update(comparable=False, reason="; ".join(reasons), verdict="not comparable")
        else:
            g = c.growth_pct
            verdict = ("consistent with the claim" if row["measured_low"] <= g <= row["measured_high"]
                       else "below the claim" if row["measured_high"] < g else "above the claim")
            row.update(comparable=True, reason="", verdict=verdict)
        rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)

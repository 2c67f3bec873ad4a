"""Claims compared only where comparable, verdicts from intervals, and stable site ids (issue 13)."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from geo.cli.main import main
from geo.results.change import summarize
from geo.results.claims import CHIPWI_PANGWA, CLAIMS, Claim, compare_claims
from geo.results.tracking import track_sites
from estimates import checked
from runfolder import PERIODS, run_folder  # noqa: F401  (pytest fixture)


def _summary(counts, lows=None, highs=None, periods=("2020-21", "2021-22", "2022-23"), clear=1.0):
    rows = []
    for i, (p, n) in enumerate(zip(periods, counts)):
        rows.append(dict(period=p, footprint_area_m2=1e6, pond_area_m2=0.0, cleared_area_m2=1e6, site_count=n,
                         site_count_low=(lows or counts)[i], site_count_high=(highs or counts)[i],
                         site_extent_m2=1e6, pond_count=0, clear_fraction=clear, n_scenes=3))
    return summarize(rows)


GW = CLAIMS[0]  # +40 % sites 2021 → 2023, Chipwi–Pangwa belt
BELT_AOI = box(98.0, 25.5, 98.6, 26.1)


def test_every_claim_carries_region_definition_period_and_citation():
    for c in CLAIMS:
        assert c.region.area > 0 and c.definition in {"site_count", "site_extent", "footprint"}
        assert c.publisher and c.title and c.date and c.url.startswith("https://")
        assert c.year_from < c.year_to and c.figure


def test_a_small_aoi_is_not_comparable_and_says_why():
    tiny = box(98.30, 25.70, 98.36, 25.75)  # ~6 km AOI inside the belt
    row = compare_claims(_summary([10, 12, 14]), (GW,), aoi_wgs84=tiny).iloc[0]
    assert not row["comparable"] and row["verdict"] == "not comparable"
    assert "covers" in row["reason"] and row["aoi_cover_pct"] < 5
    assert row["measured_from"] == "10 sites" and row["measured_to"] == "14 sites"  # absolute values beside


def test_simulated_runs_get_no_verdict():
    row = compare_claims(_summary([10, 12, 14]), (GW,), aoi_wgs84=BELT_AOI, simulated=True).iloc[0]
    assert not row["comparable"] and "simulated" in row["reason"]


def test_missing_seasons_are_not_comparable():
    s = _summary([10, 12], periods=("2021-22", "2022-23"))
    row = compare_claims(s, (GW,), aoi_wgs84=BELT_AOI).iloc[0]
    assert not row["comparable"] and "2020-21" in row["reason"]


@pytest.mark.parametrize("counts,lows,highs,verdict", [
    ([10, 12, 14], [9, 11, 13], [11, 13, 15], "consistent with the claim"),   # +40 % inside the interval
    ([10, 10, 11], [10, 10, 11], [10, 10, 11], "below the claim"),            # +10 %, tight interval
    ([10, 15, 30], [10, 14, 28], [10, 16, 32], "above the claim"),            # +200 % is not "consistent"
])
def test_verdicts_use_the_interval(counts, lows, highs, verdict):
    row = compare_claims(checked(_summary(counts, lows, highs)), (GW,), aoi_wgs84=BELT_AOI).iloc[0]
    assert row["comparable"] and row["verdict"] == verdict
    assert row["measured_low"] - 1e-9 <= row["measured_growth_pct"] <= row["measured_high"] + 1e-9
    assert row["map_check"] == ("2020-21: user's 0.90, producer's 0.90 (74 points); 2022-23: user's 0.90, "
                                "producer's 0.90 (74 points)")


def test_a_map_not_checked_against_reference_labels_gets_no_verdict():
    """The growth interval leaves out sites the detector misses or invents, and on blind generators the detector's
    growth was off by tens of points: without a sample-based check of both claim seasons there is no verdict."""
    s = _summary([10, 10, 11], [10, 10, 11], [10, 10, 11])  # "below the claim" once checked
    for summary, missing in ((s, "2020-21 and 2022-23"), (checked(s, ("2020-21", "2021-22")), "2022-23")):
        row = compare_claims(summary, (GW,), aoi_wgs84=BELT_AOI).iloc[0]
        assert not row["comparable"] and row["verdict"] == "not comparable"
        assert f"not checked against reference labels in {missing} (run 'minewatch sample'" in row["reason"]
        assert row["measured_growth_pct"] == pytest.approx(10.0)  # the measurement is still shown
    assert "2022-23: not checked" in row["map_check"] and "2020-21: user's 0.90" in row["map_check"]


@pytest.mark.parametrize("ua, pa, n, why", [(0.6, 0.95, 74, "2022-23 (user's 0.60, producer's 0.95)"),
                                           (0.95, 0.7, 74, "2022-23 (user's 0.95, producer's 0.70)"),
                                           (float("nan"), 0.9, 74, "2022-23 (user's nan, producer's 0.90)"),
                                           (1.0, 1.0, 12, "2022-23 (only 12 footprint points)")])
def test_a_map_that_misses_or_invents_too_much_or_is_checked_on_too_few_points_gets_no_verdict(ua, pa, n, why):
    row = compare_claims(checked(_summary([10, 12, 14]), ua=ua, pa=pa, n=n), (GW,), aoi_wgs84=BELT_AOI).iloc[0]
    assert not row["comparable"] and "the map's check against reference labels fails in 2020-21 (" in row["reason"]
    assert why in row["reason"] and "from at least 50 footprint points" in row["reason"]


def test_the_map_check_threshold_is_inclusive():
    s = _summary([10, 12, 14], [9, 11, 13], [11, 13, 15])
    row = compare_claims(checked(s, ua=0.8, pa=0.8), (GW,), aoi_wgs84=BELT_AOI).iloc[0]
    assert row["comparable"] and row["verdict"] == "consistent with the claim"


def test_low_clear_coverage_is_not_comparable():
    row = compare_claims(_summary([10, 12, 14], clear=0.2), (GW,), aoi_wgs84=BELT_AOI).iloc[0]
    assert not row["comparable"] and "clear coverage" in row["reason"]


def test_belt_aoi_covers_the_claim_region():
    c = Claim("X", "t", "2024", "https://x", "belt", CHIPWI_PANGWA, "footprint", "footprint_area_m2", 2021, 2023,
              "+1%", 1.0)
    row = compare_claims(_summary([1, 1, 1]), (c,), aoi_wgs84=CHIPWI_PANGWA).iloc[0]
    assert row["aoi_cover_pct"] == pytest.approx(100.0)


def _sites(boxes, areas=None):
    return gpd.GeoDataFrame({"site_id": list(range(1, len(boxes) + 1)),
                             "footprint_area_m2": areas or [b.area for b in boxes]}, geometry=boxes, crs=32647)


def test_tracking_keeps_ids_and_records_merges_and_splits():
    a, b, c = box(0, 0, 100, 100), box(1000, 0, 1100, 100), box(2000, 0, 2100, 100)
    p1 = _sites([c, a, b])                                    # own ids 1 (c), 2 (a), 3 (b)
    p2 = _sites([box(10, 0, 110, 100), b, c])                 # a moved 10 m; order changed
    p3 = _sites([box(0, 0, 1100, 100), c, box(3000, 0, 3100, 100)])  # a and b merged; new site
    p4 = _sites([box(0, 0, 300, 100), box(900, 0, 1100, 100), c, box(3000, 0, 3100, 100)])  # merged site split
    ids, events = track_sites([("1", p1), ("2", p2), ("3", p3), ("4", p4)], max_gap_m=50)
    assert ids[0] == {1: 1, 2: 2, 3: 3}
    assert ids[1] == {1: 2, 2: 3, 3: 1}                       # each site kept its id
    assert ids[2][1] in (2, 3) and ids[2][2] == 1 and ids[2][3] == 4
    merged_into = ids[2][1]
    assert sorted(events[2][merged_into]["merged_from"]) == [({2, 3} - {merged_into}).pop()]
    kept = [s for s in ids[3].values() if s == merged_into]
    assert len(kept) == 1 and ids[3][3] == 1 and ids[3][4] == 4
    new = [s for s in ids[3].values() if s not in (1, 4, merged_into)]
    assert len(new) == 1 and new[0] > 4 and events[3][new[0]]["split_from"] == merged_into


def test_a_site_missed_for_a_season_comes_back_under_its_id():
    a, b = box(0, 0, 100, 100), box(1000, 0, 1100, 100)
    ids, _ = track_sites([("1", _sites([a, b])), ("2", _sites([b])), ("3", _sites([a, b]))])
    assert ids[2] == {1: 1, 2: 2}


def test_change_geojson_uses_stable_ids(run_folder, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(run_folder.path, run)
    with pytest.raises(SystemExit) as exc:
        main(["change", str(run)])
    assert exc.value.code == 0
    change = gpd.read_file(run / "change.geojson").to_crs(32647)
    sites = {p: gpd.read_file(run / "footprints.gpkg", layer=f"sites_{p}") for p in PERIODS}
    for (_, r) in change.iterrows():
        layer = sites[r["period_from"] if r["change"] == "abandoned" else r["period_to"]]
        site = layer[layer["site_id"] == r["site_id"]]
        assert len(site) == 1 and site.geometry.iloc[0].intersects(r.geometry.buffer(-1).buffer(1))
    # A site present in several periods has one id throughout: site A (its first pond at row 22, col 22 of the
    # runfolder grid) and site B (pond at row 22, col 152; from the second period on).
    from shapely.geometry import Point

    for (r, c), present in (((22, 22), PERIODS), ((22, 152), PERIODS[1:])):
        pt = Point(431000 + 10 * c + 5, 2840000 - 10 * r - 5)
        ids = {int(sites[p].to_crs(32647).loc[lambda d: d.contains(pt), "site_id"].iloc[0]) for p in present}
        assert len(ids) == 1, (r, c, ids)
    claims = pd.read_csv(run / "claims.csv")
    assert {"comparable", "reason", "measured_low", "measured_high"} <= set(claims.columns)
    assert not claims["comparable"].any()  # a 2 × 2 km test AOI is not the belt
    summary = pd.read_csv(run / "summary.csv")
    for col in ("footprint_area_m2", "pond_area_m2", "cleared_area_m2", "site_count", "footprint_growth_pct",
                "site_count_growth_pct"):
        assert (summary[f"{col}_low"] <= summary[col] + 1e-9).all() and (summary[col] <= summary[f"{col}_high"] + 1e-9).all()
    man = json.loads((run / "manifest.json").read_text())
    assert man.get("simulated", False) is False


def test_the_terminal_prints_each_claim_s_verdict_or_why_not(tmp_path):
    from geo.cli.run import print_claims

    s = _summary([10, 10, 11], [10, 10, 11], [10, 10, 11])
    lines = []
    for summary in (s, checked(s)):
        compare_claims(summary, (GW,), aoi_wgs84=BELT_AOI).to_csv(tmp_path / "claims.csv", index=False)
        print_claims(tmp_path, lines.append)
    assert lines[0].startswith("Claims (claims.csv; a verdict needs a map checked")
    assert lines[1].startswith("  Global Witness +40% mining sites (2021→2023): not comparable: the map is not "
                               "checked against reference labels in 2020-21 and 2022-23")
    assert lines[3] == "  Global Witness +40% mining sites (2021→2023): below the claim: measured +10.0 % [+10.0 … +10.0 %]"
    (tmp_path / "claims.csv").write_text("")  # an unreadable file prints nothing
    print_claims(tmp_path, lines.append)
    assert len(lines) == 4


def test_the_headline_says_when_the_map_is_not_checked():
    from geo.results.change import headline_caveats

    s = _summary([10, 12, 14])
    ends = ("2020-21", "2022-23")
    said = " ".join(headline_caveats(s, ends))
    assert "MAP NOT CHECKED in 2020-21 and 2022-23: no reference labels" in said
    assert not [c for c in headline_caveats(checked(s), ends) if c.startswith("MAP")]
    weak = headline_caveats(checked(s, ("2022-23",), ua=0.55), ends)
    assert "MAP NOT CHECKED in 2020-21:" in " ".join(weak)
    assert "MAP CHECK FAILED in 2022-23 (user's 0.55, producer's 0.90): a check needs" in " ".join(weak)
    few = " ".join(headline_caveats(checked(s, n=49), ends))
    assert "MAP CHECK FAILED in 2020-21 (only 49 footprint points) and 2022-23 (only 49 footprint points)" in few
    assert "MAP" not in " ".join(headline_caveats(checked(s, n=50), ends))

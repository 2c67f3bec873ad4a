"""What the report says where the data cannot support a number: seasons with no scenes, cloudy seasons, a stale
sample-based estimate, a claim on another scale, and intervals on a non-rectangular AOI."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon, box

from geo.cli.main import main
from geo.cli.run import print_summary
from geo.config import RunParams
from geo.results.change import NO_DATA, summarize
from geo.results.claims import CLAIMS, compare_claims
from geo.results.export import read_raster
from geo.results.intervals import count_interval
from geo.results.outputs import period_intervals, vectorize_period, write_vectors_and_report
from geo.results.rasters import write_classmap, write_confidence
from geo.stages.vectorize import NOT_OBSERVED
from runfolder import AOI_NAME, GRID, PERIODS, run_folder  # noqa: F401  (pytest fixture)


@pytest.fixture
def run_copy(run_folder, tmp_path):  # noqa: F811
    dst = tmp_path / "run"
    shutil.copytree(run_folder.path, dst)
    return dst


def _rewrite(out, periods, coverage):
    return write_vectors_and_report(out, AOI_NAME, list(periods), RunParams(), coverage)


def _coverage(**clear):
    return {p: {"clear_fraction": clear.get(p.replace("-", "_"), 0.95), "n_scenes": 4} for p in PERIODS}


def test_a_season_without_scenes_is_no_data_not_zero_and_not_minus_100_percent(run_copy, capsys):
    first = PERIODS[0]
    (run_copy / f"classmap_{first}.tif").unlink()
    (run_copy / f"confidence_{first}.tif").unlink()
    cov = _coverage()
    del cov[first]
    res = _rewrite(run_copy, PERIODS, cov)
    s = pd.read_csv(res["summary_csv"]).set_index("period")
    assert np.isnan(s.loc[first, "footprint_area_m2"]) and np.isnan(s.loc[first, "site_count"])
    assert np.isnan(s.loc[first, "footprint_area_m2_high"])  # no zero-width interval around a made-up 0
    assert s.loc[first, "trend"] == NO_DATA
    # no growth from a season nobody saw (it used to read 0 km² → x, and a missing last season read -100 %)
    assert s["footprint_growth_pct"].isna().all() and s["site_count_growth_pct"].isna().all()
    assert s.loc[PERIODS[2], "footprint_area_m2"] > 0  # the seen seasons keep their figures
    report = (run_copy / "report.md").read_text()
    headline = next(line for line in report.splitlines() if line.startswith("**Footprint"))
    assert f"NO DATA in {first}" in headline and "-100" not in headline
    table = report.split("## Per period", 1)[1].split("\n## ", 1)[0]
    assert "-100" not in table and f"| {first} | – |" in table
    print_summary(SimpleNamespace(summary_csv=res["summary_csv"], out_dir=run_copy, report_html=res["report_html"]))
    out = capsys.readouterr().out
    assert f"{first}: NO DATA (no scenes)" in out and f"not defined (no data in {first})" in out


def test_a_season_without_scenes_through_minewatch_change(run_copy, capsys):
    last = PERIODS[-1]
    for name in (f"classmap_{last}.tif", f"confidence_{last}.tif", "coverage.json"):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / "tasks" / last)
    with pytest.raises(SystemExit) as exc:
        main(["change", str(run_copy)])
    assert exc.value.code == 0, capsys.readouterr().err
    s = pd.read_csv(run_copy / "summary.csv").set_index("period")
    assert s.loc[last, "trend"] == NO_DATA and np.isnan(s.loc[last, "footprint_growth_pct"])
    assert not (s["footprint_growth_pct"] <= -99).any()


def test_growth_out_of_a_cloudy_first_season_is_flagged_everywhere(run_copy, capsys):
    first = PERIODS[0]
    res = _rewrite(run_copy, PERIODS, _coverage(**{first.replace("-", "_"): 0.3}))
    s = pd.read_csv(res["summary_csv"]).set_index("period")
    assert s.loc[first, "low_confidence"]
    assert s.loc[PERIODS[1], "footprint_change_pct_prev"] > 10  # growth, not decline: it used to be "growth"
    assert s.loc[PERIODS[1], "trend"] == "uncertain (low clear coverage)"
    headline = next(line for line in (run_copy / "report.md").read_text().splitlines() if line.startswith("**"))
    assert f"LOW CLEAR COVERAGE in {first} (clear fraction 0.30)" in headline
    print_summary(SimpleNamespace(summary_csv=res["summary_csv"], out_dir=run_copy, report_html=res["report_html"]))
    growth = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Growth "))
    assert "LOW CLEAR COVERAGE" in growth


def test_clear_seasons_carry_no_coverage_caveat(run_copy):
    res = _rewrite(run_copy, PERIODS, _coverage())
    s = pd.read_csv(res["summary_csv"])
    assert not s["trend"].str.startswith("uncertain").any()
    assert "LOW CLEAR COVERAGE" not in (run_copy / "report.md").read_text()


def test_summarize_keeps_a_growth_into_a_clear_season_after_a_cloudy_one_uncertain():
    rows = [dict(period=p, footprint_area_m2=a, pond_area_m2=0.0, cleared_area_m2=a, site_count=n,
                 site_extent_m2=a, pond_count=0, clear_fraction=c, n_scenes=3)
            for p, a, n, c in (("a", 1e5, 2, 0.9), ("b", 1e5, 2, 0.2), ("c", 5e5, 9, 0.9), ("d", 6e5, 9, 0.9))]
    t = summarize(rows)["trend"].tolist()
    assert t == ["baseline", "uncertain (low clear coverage)", "uncertain (low clear coverage)", "growth"]
    rows[1]["clear_fraction"] = 0.9
    rows[2].update(model_uncertain_share=0.8)  # doubtful, and within 10 % of the season before: still not "stable"
    rows[2]["footprint_area_m2"] = rows[2]["cleared_area_m2"] = 1.05e5
    t = summarize(rows)["trend"].tolist()
    assert t == ["baseline", "stable", "uncertain (model unsure)", "uncertain (model unsure)"]


def test_site_count_upper_bound_counts_sites_unobserved_ground_may_hide():
    assert count_interval(10, np.ones(10), 10, 10) == (10, 10)
    assert count_interval(10, np.ones(10), 10, 10, unseen_share=0.5) == (10, 20)  # same density where unseen
    assert count_interval(0, np.ones(0), 0, 0, unseen_share=0.9) == (0, 0)
    assert count_interval(3, np.ones(3), 3, 3, unseen_share=1.0)[1] == np.inf


def test_intervals_ignore_the_grid_outside_a_non_rectangular_aoi(tmp_path):
    """Pixels outside the AOI are nodata in the class map, not unseen ground: they must not widen the interval."""
    cm = np.zeros(GRID.shape, np.uint8)
    cm[150:170, 20:40] = 1  # 400 px of cleared land, inside the AOI
    conf = np.where(cm > 0, 90, 95).astype(np.uint8)
    rows, cols = np.indices(GRID.shape)
    outside = cols > rows  # the AOI is the grid's lower-left triangle
    cm[outside], conf[outside] = NOT_OBSERVED, NOT_OBSERVED
    p = "2022-23"
    write_classmap(cm, GRID, tmp_path / f"classmap_{p}.tif")
    write_confidence(conf, GRID, tmp_path / f"confidence_{p}.tif")
    left, bottom, right, top = GRID.bounds
    tri = gpd.GeoSeries([Polygon([(left, top), (left, bottom), (right, bottom)])], crs=GRID.crs).to_crs(4326)
    params = RunParams()
    fp, sites, _ = vectorize_period(tmp_path, p, params)
    area = float(fp["area_m2"].sum())
    assert area == pytest.approx(400 * 100)
    whole = period_intervals(tmp_path, p, fp, sites, params)
    aoi = period_intervals(tmp_path, p, fp, sites, params, tri.iloc[0])
    assert whole["footprint_area_m2_high"] > 1.9 * area  # the grid's empty half counted as unseen ground
    assert aoi["footprint_area_m2_high"] < 1.3 * area  # only the boundary term is left
    assert aoi["site_count_high"] == len(sites)  # no unseen ground inside the AOI: no hidden sites


def _mw_summary(extent_from, extent_to):
    rows = [dict(period=p, footprint_area_m2=e, pond_area_m2=0.0, cleared_area_m2=e, site_count=5,
                 site_extent_m2=e, site_extent_m2_low=0.9 * e, site_extent_m2_high=1.1 * e, pond_count=0,
                 clear_fraction=0.95, n_scenes=4)
            for p, e in (("2017-18", extent_from), ("2023-24", extent_to))]
    return summarize(rows)


def test_a_claim_on_another_scale_is_not_comparable():
    mw = next(c for c in CLAIMS if c.metric == "site_extent_m2")
    belt = box(98.0, 25.5, 98.6, 26.1)
    row = compare_claims(_mw_summary(2e6, 3.6e6), (mw,), aoi_wgs84=belt).iloc[0]  # 130x smaller than 260 km²
    assert not row["comparable"] and "1/130 of it" in row["reason"] and "different regions or definitions" in \
        row["reason"]
    from estimates import checked

    row = compare_claims(checked(_mw_summary(250e6, 420e6)), (mw,), aoi_wgs84=belt).iloc[0]  # a checked map, a verdict
    assert row["comparable"] and row["verdict"] != "not comparable"


def test_a_claim_season_without_scenes_says_so():
    gw = CLAIMS[0]
    rows = [dict(period=p, footprint_area_m2=1e6, pond_area_m2=0.0, cleared_area_m2=1e6, site_count=10,
                 site_extent_m2=1e6, pond_count=0, clear_fraction=0.95, n_scenes=4) for p in ("2019-20", "2022-23")]
    from geo.results.change import no_data_row

    s = summarize([rows[0], no_data_row("2020-21"), rows[1]])  # GW compares 2020-21 with 2022-23
    row = compare_claims(s, (gw,), aoi_wgs84=box(98.0, 25.5, 98.6, 26.1)).iloc[0]
    assert row["verdict"] == "not comparable" and "no scenes in 2020-21" in row["reason"]


def _label_with_the_map(run_dir, gpkg):
    s = gpd.read_file(gpkg, layer="sample")
    for p in PERIODS:
        classes, grid = read_raster(run_dir / f"classmap_{p}.tif")
        sel = s["period"] == p
        t = grid.transform
        col = ((s.loc[sel].geometry.x.to_numpy() - t.c) / t.a).astype(int)
        row = ((s.loc[sel].geometry.y.to_numpy() - t.f) / t.e).astype(int)
        s.loc[sel, "reference"] = classes[row, col]
    s["reference"] = s["reference"].astype(int)
    gpkg.unlink()
    s.to_file(gpkg, layer="sample", driver="GPKG")


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    return out


def test_an_estimate_of_older_class_maps_is_left_out_of_the_report(run_copy, tmp_path, capsys):
    gpkg = tmp_path / "sample.gpkg"
    _cli(["sample", str(run_copy), "--n", "60", "--out", str(gpkg)], capsys)
    _label_with_the_map(run_copy, gpkg)
    headline = next(line for line in (run_copy / "report.md").read_text().splitlines() if line.startswith("**"))
    assert f"MAP NOT CHECKED in {PERIODS[0]} and {PERIODS[-1]}" in headline
    claims = pd.read_csv(run_copy / "claims.csv").set_index("publisher")
    assert claims.loc["Global Witness", "map_check"] == "2020-21: not checked; 2022-23: not checked"
    assert "not checked against reference labels in 2020-21 and 2022-23" in claims.loc["Global Witness", "reason"]
    out = _cli(["estimate", str(run_copy), "--labels", str(gpkg)], capsys).out
    assert "Good-practice area estimate" in (run_copy / "report.md").read_text()
    gw_line = next(line for line in out.splitlines() if line.startswith("  Global Witness +40% mining sites"))
    assert "not comparable: " in gw_line and "not checked" not in gw_line  # the terminal says why, as the file
    claims = pd.read_csv(run_copy / "claims.csv").set_index("publisher")  # the claims are held against the check
    gw = claims.loc["Global Witness"]
    assert gw["map_check"].startswith("2020-21: user's 1.00, producer's 1.00 (") and "; 2022-23: user's" in gw["map_check"]
    assert "not checked" not in gw["reason"]
    summary = pd.read_csv(run_copy / "summary.csv").set_index("period")
    assert (summary["map_users_accuracy"] == 1.0).all() and summary["map_producers_accuracy"].notna().all()
    headline = next(line for line in (run_copy / "report.md").read_text().splitlines() if line.startswith("**"))
    assert "MAP NOT CHECKED" not in headline
    n = int(summary.loc[PERIODS[-1], "map_check_points"])  # a 60-point sample holds too few footprint points
    assert n < 50 and f"MAP CHECK FAILED in {PERIODS[0]} (only " in headline and f"{PERIODS[-1]} (only {n} " in headline
    out = _cli(["change", str(run_copy)], capsys).out  # the same maps: the estimate stays
    assert "MAP NOT CHECKED" not in next(line for line in out.splitlines() if line.startswith("Growth "))
    assert "Good-practice area estimate" in (run_copy / "report.md").read_text()
    # a rerun changes one season's map (here: more cleared land drawn in); its estimate no longer describes it
    last = PERIODS[-1]
    cm, grid = read_raster(run_copy / f"classmap_{last}.tif")
    cm[100:130, 100:130] = 1
    write_classmap(cm, grid, run_copy / f"classmap_{last}.tif")
    _cli(["change", str(run_copy)], capsys)
    report = (run_copy / "report.md").read_text()
    assert f"estimate.csv holds a sample-based estimate for {last} made from other class maps" in report
    assert f"MAP NOT CHECKED in {last}:" in next(line for line in report.splitlines() if line.startswith("**"))
    section = report.split("Good-practice area estimate", 1)[1].split("\n## ", 1)[0]
    assert f"| {last} |" not in section and f"| {PERIODS[0]} |" in section  # the other seasons keep theirs
    assert (run_copy / "estimate.csv").exists()  # the file is kept


def test_definitions_state_the_run_s_own_thresholds(run_copy):
    import dataclasses

    p = RunParams()
    p = dataclasses.replace(p, change=dataclasses.replace(p.change, expand_ratio=0.25, min_clear_fraction=0.6),
                            detect=dataclasses.replace(p.detect, min_area_m2=1234.0))
    write_vectors_and_report(run_copy, AOI_NAME, list(PERIODS), p, _coverage())
    defs = (run_copy / "report.md").read_text().split("## Definitions", 1)[1].split("\n## ", 1)[0]
    assert "more than 25 %" in defs and "under 60 % of the AOI seen clear" in defs and "under 1234 m²" in defs
    assert "more than 50 % of its possible-footprint pixels" in defs and "not that the figure is certain" in defs
    assert "under 1234 m²" in (run_copy / "report.html").read_text()


def test_tables_read_back_print_as_the_report_does(tmp_path):
    from geo.results.export import write_csv

    v = 43.4499978733608  # 6 significant digits wrote 43.45, which printed +43.5 against the report's +43.4
    back = pd.read_csv(write_csv(pd.DataFrame({"footprint_growth_pct": [v]}), tmp_path / "s.csv"))
    assert f"{back['footprint_growth_pct'][0]:+.1f}" == f"{v:+.1f}" == "+43.4"


def test_a_site_under_clouds_is_not_called_abandoned_or_new(run_copy):
    """runfolder.py: site C (rows 140-148, cols 20-41) is gone from the third season and site D (rows 150-166,
    cols 150-160) appears in the fourth. Here the third season never saw either place clear."""
    third = PERIODS[2]
    cm, grid = read_raster(run_copy / f"classmap_{third}.tif")
    cm[135:155, 15:45] = NOT_OBSERVED
    cm[145:170, 145:165] = NOT_OBSERVED
    write_classmap(cm, grid, run_copy / f"classmap_{third}.tif")
    _rewrite(run_copy, PERIODS, _coverage())
    ch = gpd.read_file(run_copy / "change.geojson")
    into = ch[(ch["period_from"] == PERIODS[1]) & (ch["period_to"] == third)]
    out_of = ch[(ch["period_from"] == third) & (ch["period_to"] == PERIODS[3])]
    assert "abandoned" not in set(into["change"]) and (into["change"] == "unseen_later").sum() == 1
    assert into.loc[into["change"] == "unseen_later", "footprint_to_m2"].isna().all()  # not 0 m²: unknown
    assert "new" not in set(out_of["change"]) and (out_of["change"] == "unseen_before").sum() == 1
    report = (run_copy / "report.md").read_text()
    assert "Not seen clear later" in report and "Abandoned (not found in the later season)" in report


def test_a_site_gone_from_ground_that_was_seen_is_abandoned(run_copy):
    _rewrite(run_copy, PERIODS, _coverage())
    ch = gpd.read_file(run_copy / "change.geojson")
    into = ch[(ch["period_from"] == PERIODS[1]) & (ch["period_to"] == PERIODS[2])]
    assert (into["change"] == "abandoned").sum() == 1 and not (ch["change"].str.startswith("unseen")).any()
    assert (into.loc[into["change"] == "abandoned", "footprint_to_m2"] == 0).all()


def test_growth_chart_shows_no_data_and_unbounded_seasons(tmp_path, monkeypatch):
    """A season with no scenes keeps its place on the axis, marked; an interval with no upper bound is drawn to the
    top and labelled, not silently dropped (matplotlib drops inf vertices without a word)."""
    import warnings

    import matplotlib.pyplot as plt

    from geo.results.report import growth_chart

    figs = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    nan, inf = float("nan"), float("inf")
    df = pd.DataFrame({"period": ["2019-20", "2020-21", "2021-22"], "cleared_area_m2": [1e6, nan, 2e6],
                       "pond_area_m2": [1e5, nan, 2e5], "low_confidence": [False, False, True],
                       "footprint_area_m2_low": [1e6, nan, 1e6], "footprint_area_m2_high": [2e6, nan, inf],
                       "site_count": [3, nan, 4], "site_count_low": [2, nan, 3], "site_count_high": [5, nan, inf]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        growth_chart(df, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
    ax = figs[0].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("no data") for t in texts) and any("no upper" in t for t in texts)
    assert ax.get_xlim()[0] < 0 and ax.get_xlim()[1] > 2  # all three seasons on the axis
    assert np.isfinite(ax.get_ylim()).all()

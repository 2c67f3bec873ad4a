"""The model's self-check (docs/MODEL_CHECKS.md): how sure the U-Net is of what it maps, per season, recorded in every
task's done.json, the manifest, summary.csv and the report; a doubtful season makes trends "uncertain" and claims that
need it "not comparable". Before: the input check's warnings were logged in the worker and then dropped (nothing
reached a Dask user or the manifest), and nothing told a user that the model was out of its depth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.results.change import period_row, summarize
from geo.results.claims import CLAIMS, compare_claims
from geo.stages import input_check as ic
from geo.results.report_sections import model_check_notes
from geo.stages.input_check import is_doubtful, season_check, season_checks, unsure_counts


def test_unsure_counts_count_possible_footprint_and_the_unsure_part_inside_the_mask():
    p = np.array([[0.05, 0.1, 0.3], [0.49, 0.5, 0.9]], np.float32)
    mask = np.array([[True, True, True], [True, True, False]])
    assert unsure_counts(p, mask) == {"candidate_px": 4, "unsure_px": 3}  # 0.1, 0.3, 0.49 unsure; 0.5 sure; 0.9 masked


def test_season_check_sums_tiles_and_needs_enough_pixels_and_every_tile():
    a = {"candidate_px": 400, "unsure_px": 300, "input_warnings": ["w1"]}
    b = {"candidate_px": 200, "unsure_px": 60, "input_warnings": ["w1", "w2"]}
    assert season_check([a, b]) == {"model_uncertain_share": 0.6, "model_check_unavailable": None,
                                    "input_warnings": ["w1", "w2"], "rules_m2": None, "rules_dropped_m2": None,
                                    "footprint_m2": None}  # no rules areas: the model alone ran
    few = season_check([a])
    assert few["model_uncertain_share"] is None and "fewer than 500" in few["model_check_unavailable"]
    old = season_check([a, None])  # a task of an older minewatch
    assert old["model_uncertain_share"] is None and "older minewatch" in old["model_check_unavailable"]
    assert season_check([None, None])["model_check_unavailable"] is None  # the rules: nothing to check
    assert season_check([])["model_uncertain_share"] is None
    assert is_doubtful(0.6) and not is_doubtful(0.5) and not is_doubtful(None) and not is_doubtful("x")


def test_input_warnings_are_one_per_band_the_worst_tile():
    recs = [{"candidate_px": 600, "unsure_px": 1, "input_warnings": [f"{n}% of B02 pixels lie outside 0-1",
                                                                       "13% of B03 pixels lie outside 0-1"]}
            for n in (21, 26, 23)]
    assert season_check(recs)["input_warnings"] == ["26% of B02 pixels lie outside 0-1",
                                                    "13% of B03 pixels lie outside 0-1"]


def _summary(shares, counts=(10, 12, 14), periods=("2020-21", "2021-22", "2022-23")):
    rows = [dict(period=p, footprint_area_m2=1e6 * (1 + i), pond_area_m2=0.0, cleared_area_m2=1e6 * (1 + i),
                 site_count=n, site_extent_m2=1e6, pond_count=0, clear_fraction=1.0, n_scenes=3,
                 model_uncertain_share=float("nan") if s is None else s)
            for i, (p, n, s) in enumerate(zip(periods, counts, shares))]
    return summarize(rows)


def test_summary_flags_doubtful_seasons_and_their_trend():
    s = _summary([0.2, 0.7, 0.3])
    assert s["model_doubtful"].tolist() == [False, True, False]
    assert s["trend"].tolist() == ["baseline", "uncertain (model unsure)", "uncertain (model unsure)"]
    ok = _summary([0.2, None, 0.3])  # unknown is empty, not "not doubtful"
    assert ok["model_doubtful"].tolist()[0] is False and pd.isna(ok["model_doubtful"].tolist()[1])
    assert ok["trend"].tolist()[1] == "growth"


def test_claims_that_need_a_doubtful_season_are_not_comparable():
    belt = box(98.0, 25.5, 98.6, 26.1)
    row = compare_claims(_summary([0.2, 0.3, 0.8]), (CLAIMS[0],), aoi_wgs84=belt).iloc[0]
    assert not row["comparable"] and "mapped in 2022-23 (model_doubtful)" in row["reason"]
    from estimates import checked

    row = compare_claims(checked(_summary([0.2, 0.3, 0.4])), (CLAIMS[0],), aoi_wgs84=belt).iloc[0]
    assert row["comparable"]


def test_period_row_carries_the_share():
    import geopandas as gpd

    empty = gpd.GeoDataFrame({"class": [], "area_m2": []}, geometry=[], crs=32647)
    sites = gpd.GeoDataFrame({"extent_area_m2": []}, geometry=[], crs=32647)
    assert period_row("2021-22", empty, sites, clear_fraction=1, n_scenes=1, model_uncertain_share=0.42)[
        "model_uncertain_share"] == 0.42
    assert np.isnan(period_row("2021-22", empty, sites, clear_fraction=1, n_scenes=1)["model_uncertain_share"])


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from geo.sim.demo import write_demo_dataset
    from geo.sim.scene import SimConfig

    cfg = SimConfig(seed=3, width=160, height=160, margin=10, start_year=2021, end_year=2023,
                    acquisitions_per_season=1, initial_sites=3, new_sites_per_season=1, abandoned_sites=0,
                    site_gap_m=100.0, clear_probability=1.0)
    return write_demo_dataset(tmp_path_factory.mktemp("checks-archive"), config=cfg)


def _run(archive, out, method):
    from geo.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["-q", "run", "--aoi", str(archive.aoi_path), "--start", "2021", "--end", "2021", "--out", str(out),
              "--stac-url", str(archive.items_path), "--sync", "--method", method, "--tile-px", "96"])
    return exc.value.code


def test_a_run_records_the_check_in_tasks_manifest_summary_and_report(archive, tmp_path, monkeypatch):
    monkeypatch.setattr(ic, "UNSURE_MIN_PX", 1)          # the tiny scene has fewer possible-footprint pixels
    assert _run(archive, tmp_path / "run", "fused") == 0
    out = tmp_path / "run"
    records = [json.loads(p.read_text())["model_check"] for p in (out / "tasks").glob("*/*/done.json")]
    assert records and all(r["candidate_px"] >= r["unsure_px"] >= 0 for r in records)
    want = season_check(records)["model_uncertain_share"]
    man = json.loads((out / "manifest.json").read_text())
    (period, check), = man["model_checks"].items()
    assert 0 <= check["model_uncertain_share"] <= 1 and check["model_uncertain_share"] == want
    assert check["model_doubtful"] is False  # the model's own simulator: it is sure of what it maps
    summary = pd.read_csv(out / "summary.csv")
    assert summary["model_uncertain_share"].iloc[0] == pytest.approx(want)
    assert "MODEL UNSURE" not in (out / "report.md").read_text()

    # the same run, with a threshold that every season fails: flagged in manifest, summary and report
    monkeypatch.setattr(ic, "UNSURE_SHARE_MAX", -1.0)
    assert _run(archive, tmp_path / "run", "fused") == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["model_checks"][period]["model_doubtful"] is True
    assert bool(pd.read_csv(out / "summary.csv")["model_doubtful"].iloc[0]) is True
    md = (out / "report.md").read_text()
    assert f"MODEL UNSURE in {period}" in md
    assert md.index("MODEL UNSURE in") < md.index("Detection method:")  # first of the notes
    headline = next(ln for ln in md.splitlines() if ln.startswith("**Footprint"))
    assert f"MODEL UNSURE in {period}" in headline


def test_rules_runs_have_no_model_check(archive, tmp_path):
    assert _run(archive, tmp_path / "rules", "rules") == 0
    man = json.loads((tmp_path / "rules" / "manifest.json").read_text())
    assert all(c["model_uncertain_share"] is None and c["model_doubtful"] is None for c in man["model_checks"].values())
    assert "self-check not available" not in (tmp_path / "rules" / "report.md").read_text()
    assert pd.read_csv(tmp_path / "rules" / "summary.csv")["model_uncertain_share"].isna().all()


def test_edited_records_say_nothing_instead_of_stopping_the_report():
    for bad in ({"candidate_px": "many", "unsure_px": 3}, {"candidate_px": 600, "unsure_px": 700},
                {"candidate_px": float("inf"), "unsure_px": 1}, {}, {"candidate_px": True, "unsure_px": 0}, "x"):
        got = season_check([bad, {"candidate_px": 600, "unsure_px": 1}])
        assert got["model_uncertain_share"] is None and "damaged" in got["model_check_unavailable"], bad
    assert season_check([{"candidate_px": 600, "unsure_px": 300, "input_warnings": "x"}])["input_warnings"] == []
    import geopandas as gpd

    empty = gpd.GeoDataFrame({"class": [], "area_m2": []}, geometry=[], crs=32647)
    sites = gpd.GeoDataFrame({"extent_area_m2": []}, geometry=[], crs=32647)
    for bad in ("abc", 7.0, [1], True, float("inf"), "inf"):
        assert np.isnan(period_row("p", empty, sites, clear_fraction=1, n_scenes=1, model_uncertain_share=bad)[
            "model_uncertain_share"])


def test_coverage_values_are_checked_once_for_every_output():
    checks = season_checks({"a": {"model_uncertain_share": 5, "input_warnings": None},
                            "b": {"model_uncertain_share": "0.9", "input_warnings": [{"x": 1}, "w"]},
                            "c": {"model_uncertain_share": True}, "d": "junk"})
    assert checks["a"] == {"model_uncertain_share": None, "model_doubtful": None, "model_check_unavailable": None,
                           "input_warnings": [], "rules_m2": None, "rules_dropped_m2": None, "footprint_m2": None,
                           "rules_disagree": None}
    assert checks["b"]["model_uncertain_share"] == 0.9 and checks["b"]["model_doubtful"] is True
    assert checks["b"]["input_warnings"] == ["w"]
    assert checks["c"]["model_uncertain_share"] is None and checks["d"]["model_doubtful"] is None
    notes = model_check_notes(checks, ["a", "b", "c", "d"])
    assert notes[0].startswith("MODEL UNSURE in b (90.0 %)") and "Input check (b): w;" in notes[1]


def test_change_checks_coverage_once_and_rewrites_the_manifest(archive, tmp_path, monkeypatch):
    """`minewatch change` after coverage.json was edited: one answer in summary, report and manifest (before: the
    report said "500 %" where the summary said not doubtful, and the manifest kept the run's old values)."""
    from geo.cli.main import main

    monkeypatch.setattr(ic, "UNSURE_MIN_PX", 1)
    out = tmp_path / "run"
    assert _run(archive, out, "fused") == 0
    cov = json.loads((out / "coverage.json").read_text())
    (period,) = cov
    for value, doubtful in ((0.9, True), (5, None), ("garbage", None)):
        cov[period]["model_uncertain_share"] = value
        cov[period]["input_warnings"] = None
        (out / "coverage.json").write_text(json.dumps(cov))
        with pytest.raises(SystemExit) as exc:
            main(["-q", "change", str(out)])
        assert exc.value.code == 0
        man = json.loads((out / "manifest.json").read_text())["model_checks"][period]
        assert man["model_doubtful"] is doubtful
        s = pd.read_csv(out / "summary.csv")
        assert str(s["model_doubtful"].iloc[0]) == ("True" if doubtful else "nan")
        assert ("MODEL UNSURE" in (out / "report.md").read_text()) is bool(doubtful)


def test_rules_areas_sum_over_tasks_and_flag_a_material_veto():
    """The fused map's veto of rules footprints is recorded per season, and the report says RULES DISAGREE when what it
    left out is a material part of the season (before: nothing recorded what the rules alone found)."""
    from geo.stages.rules_check import clean_rules, rules_counts, season_rules

    rules = np.zeros((10, 10), np.uint8)
    rules[:5] = 1
    rules[0, 0] = 2
    fused = np.zeros((10, 10), np.uint8)
    fused[:2] = 1
    fused[8:] = 2
    mask = np.ones((10, 10), bool)
    mask[4] = False
    c = rules_counts(rules, fused, mask, 100.0)
    assert c == {"rules_m2": 4000.0, "rules_dropped_m2": 2000.0, "footprint_m2": 4000.0}
    rec = {"candidate_px": 600, "unsure_px": 1}
    big = {**rec, "rules_m2": 90_000.0, "rules_dropped_m2": 60_000.0, "footprint_m2": 100_000.0}
    season = season_check([big, {**rec, **c}])
    assert (season["rules_m2"], season["rules_dropped_m2"], season["footprint_m2"]) == (94_000.0, 62_000.0, 104_000.0)
    assert season_rules([big, rec]) == {"rules_m2": None, "rules_dropped_m2": None, "footprint_m2": None}  # older task
    few = season_check([{"candidate_px": 3, "unsure_px": 1, **c}])  # the model blind: its own check says nothing
    assert few["model_uncertain_share"] is None and few["rules_dropped_m2"] == 2000.0
    assert clean_rules(season)["rules_disagree"] is True
    assert clean_rules({**season, "footprint_m2": 300_000.0})["rules_disagree"] is False  # 21 % of the footprint
    assert clean_rules({**season, "rules_dropped_m2": 40_000.0})["rules_disagree"] is False  # under 5 ha
    for bad in ({**season, "rules_dropped_m2": 1e9}, {**season, "rules_m2": float("nan")}, {**season, "footprint_m2": True}):
        assert clean_rules(bad)["rules_disagree"] is None
    checks = season_checks({"2021-22": season, "2022-23": {**season, "footprint_m2": 300_000.0}})
    notes = model_check_notes(checks, ["2021-22", "2022-23"])
    assert len(notes) == 1 and notes[0].startswith("RULES DISAGREE in 2021-22 (the rules alone map 9.4 ha; the fused "
                                                   "map left 6.2 ha of it out, 60 % of its own 10.4 ha)")
    # the growth it could change, as a sensitivity beside the reported one (first season flagged)
    summary = pd.DataFrame({"period": ["2021-22", "2022-23"], "footprint_area_m2": [100_000.0, 150_000.0],
                            "rules_dropped_m2": [62_000.0, 10_000.0]})
    notes = model_check_notes(checks, ["2021-22", "2022-23"], summary=summary)
    assert notes[0].endswith("footprint growth 2021-22 → 2022-23 would be -1.2 % instead of +50.0 %.")
    summary["rules_dropped_m2"] = [float("nan"), 10_000.0]  # unknown: no sensitivity figure
    assert "would be" not in model_check_notes(checks, ["2021-22", "2022-23"], summary=summary)[0]


def test_a_run_whose_model_vetoes_every_rules_find_says_rules_disagree(archive, tmp_path, monkeypatch):
    """Through the real run path (tasks -> done.json -> coverage -> manifest, summary, report): a model that scores
    everything background (as a model blind to the scene's spoil does) erases the rules' finds; the run still exits
    0 with its numbers, and says how much the rules alone found."""
    import models.infer as mi
    from geo.stages import rules_check

    def blind(model, card, data, bands, **kw):
        p = np.zeros((3, *data.shape[1:]), np.float32)
        p[0] = 1.0
        return p

    monkeypatch.setattr(mi, "predict_proba", blind)
    monkeypatch.setattr(rules_check, "RULES_MIN_DROPPED_M2", 1.0)  # the tiny scene's rules footprint is small
    out = tmp_path / "run"
    assert _run(archive, out, "fused") == 0
    recs = [json.loads(p.read_text())["model_check"] for p in (out / "tasks").glob("*/*/done.json")]
    assert recs and sum(r["rules_m2"] for r in recs) > 0
    assert all(r["rules_dropped_m2"] == r["rules_m2"] and r["footprint_m2"] == 0 for r in recs)
    (period, man), = json.loads((out / "manifest.json").read_text())["model_checks"].items()
    assert man["rules_disagree"] is True and man["rules_dropped_m2"] == man["rules_m2"]
    assert f"RULES DISAGREE in {period} (the rules alone map" in (out / "report.md").read_text()
    assert "and mapped no footprint" in (out / "report.md").read_text()
    from types import SimpleNamespace

    from geo.cli.run import print_summary

    lines = []
    print_summary(SimpleNamespace(out_dir=out, summary_csv=out / "summary.csv", report_html=out / "report.html"),
                  echo=lines.append)
    assert any(line.startswith(f"  {period}:") and "RULES DISAGREE: the fused map left out" in line for line in lines)
    assert pd.read_csv(out / "summary.csv")["rules_dropped_m2"].iloc[0] == man["rules_dropped_m2"]


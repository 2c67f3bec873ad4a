"""The embedded demo through the real path, checked against the simulator's truth (issue 2's acceptance)."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest

from geo.cli.main import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    with pytest.raises(SystemExit) as exc:
        main(["-q", "demo", "--out", str(out)])
    assert exc.value.code == 0
    return out


def test_demo_outputs_complete(demo_run):
    summary = pd.read_csv(demo_run / "summary.csv")
    for col in ("period", "footprint_area_m2", "pond_area_m2", "cleared_area_m2", "site_count", "clear_fraction"):
        assert col in summary.columns
    assert list(summary["period"]) == ["2019-20", "2020-21", "2021-22", "2022-23", "2023-24", "2024-25"]
    for p in summary["period"]:
        gdf = gpd.read_file(demo_run / f"footprints_{p}.geojson")
        assert gdf.crs.to_epsg() == 4326 and len(gdf) > 0
        assert set(gdf["class"]) <= {1, 2} and (gdf["area_m2"] > 0).all()
    import pyogrio
    layers = {name for name, _ in pyogrio.list_layers(demo_run / "footprints.gpkg")}
    assert {f"footprints_{p}" for p in summary["period"]} <= layers
    for name in ("report.md", "report.html", "growth.png", "manifest.json", "change.geojson"):
        assert (demo_run / name).stat().st_size > 0
    man = json.loads((demo_run / "manifest.json").read_text())
    assert man["status"] == "complete"
    assert sum(len(v) for v in man["scenes"].values()) >= 24
    assert "numpy" in man["versions"] and man["parameters"]["detect"]["method"] == "fused"


def test_demo_growth_matches_truth(demo_run):
    check = json.loads((demo_run / "demo_check.json").read_text())
    fp = check["footprint_area_m2"]
    assert fp["truth_growth_pct"] >= 40
    assert abs(fp["error_pp"]) <= 5, fp


def test_demo_final_period_iou(demo_run):
    check = json.loads((demo_run / "demo_check.json").read_text())
    last = check["iou"]["2024-25"]
    assert last["leaching_pond"] >= 0.7, last
    assert last["cleared_land"] >= 0.7, last


def test_demo_rerun_skips_done_tasks_and_gives_same_outputs(demo_run, capsys):
    before = pd.read_csv(demo_run / "summary.csv")
    with pytest.raises(SystemExit) as exc:
        main(["-q", "demo", "--out", str(demo_run)])
    assert exc.value.code == 0
    man = json.loads((demo_run / "manifest.json").read_text())
    assert man["tasks"]["run"] == 0 and man["tasks"]["skipped"] == man["tasks"]["total"] > 0
    pd.testing.assert_frame_equal(before, pd.read_csv(demo_run / "summary.csv"))


def test_demo_site_count_growth_matches_truth(demo_run):
    check = json.loads((demo_run / "demo_check.json").read_text())
    sc = check["site_count"]
    assert sc["truth_growth_pct"] >= 40
    assert abs(sc["error_pp"]) <= 3, sc
    assert abs(check["footprint_area_m2"]["error_pp"]) <= 3, check["footprint_area_m2"]


def test_demo_change_classes_match_truth_new_and_abandoned(demo_run):
    """Every transition's 'new' and 'abandoned' sites are the simulator's new and abandoned sites."""
    truth = gpd.read_file(demo_run / "demo-data" / "truth" / "sites.geojson").to_crs(32647)
    change = gpd.read_file(demo_run / "change.geojson").to_crs(32647)
    periods = list(pd.read_csv(demo_run / "summary.csv")["period"])
    for p_from, p_to in zip(periods, periods[1:]):
        step = change[(change["period_from"] == p_from) & (change["period_to"] == p_to)]
        true_new = truth[truth["first_period"] == p_to]
        true_gone = truth[truth["abandoned_from"] == p_to]
        for kind, expected in (("new", true_new), ("abandoned", true_gone)):
            got = step[step["change"] == kind]
            assert len(got) == len(expected), f"{p_from}→{p_to}: {len(got)} {kind} sites, truth has {len(expected)}"
            for geom in got.geometry:
                assert expected.intersects(geom).any(), f"{p_from}→{p_to}: a '{kind}' site is no truth {kind} site"


def test_demo_is_unmistakably_simulated(demo_run):
    """Issue 13: manifest, report.md and report.html say the imagery is simulated; no claim gets a verdict."""
    assert json.loads((demo_run / "manifest.json").read_text())["simulated"] is True
    md = (demo_run / "report.md").read_text(encoding="utf-8")
    assert "SIMULATED IMAGERY" in "\n".join(md.splitlines()[:5])
    html = (demo_run / "report.html").read_text(encoding="utf-8")
    body = html[html.index("<body>"):]
    assert body.index("SIMULATED IMAGERY") < body.index("<h1>")
    claims = pd.read_csv(demo_run / "claims.csv")
    assert not claims["comparable"].any() and (claims["verdict"] == "not comparable").all()
    assert claims["reason"].str.contains("simulated").all()


def test_demo_intervals_hold_the_truth(demo_run):
    summary = pd.read_csv(demo_run / "summary.csv")
    truth = pd.read_csv(demo_run / "demo-data" / "truth" / "summary.csv")
    inside = (summary["footprint_area_m2_low"] <= truth["footprint_area_m2"]) & \
             (truth["footprint_area_m2"] <= summary["footprint_area_m2_high"])
    assert inside.sum() >= 5, inside.tolist()
    g = (truth["footprint_area_m2"].iloc[-1] / truth["footprint_area_m2"].iloc[0] - 1) * 100
    assert summary["footprint_growth_pct_low"].iloc[-1] <= g <= summary["footprint_growth_pct_high"].iloc[-1]


def test_demo_runs_the_sample_estimate_loop(demo_run):
    """sample → labels from the simulator's truth → estimate: the truth footprint inside ≥ 5 of 6 intervals."""
    check = json.loads((demo_run / "demo_check.json").read_text())["estimate"]
    assert len(check) == 6 and sum(v["truth_inside"] for v in check.values()) >= 5, check
    est = pd.read_csv(demo_run / "estimate.csv")
    assert len(est) == 6 * 4 and "simulator truth" in est["labelled_by"].iloc[0]
    assert (demo_run / "sample.gpkg").exists()
    assert "Good-practice area estimate" in (demo_run / "report.md").read_text(encoding="utf-8")


def test_report_says_the_intervals_were_checked_on_minewatchs_own_simulator_only(demo_run):
    """Issue 11: on the blind generators growth was off by far more than the intervals; the report says so."""
    md = (demo_run / "report.md").read_text(encoding="utf-8")
    notes = md[md.index("## Notes"):]
    assert "own simulator only" in notes and "written blind" in notes and "minewatch estimate" in notes


def test_demo_model_self_check_is_sure_of_its_own_simulator(demo_run):
    """docs/MODEL_CHECKS.md: on the simulator it was trained on, the model is sure of what it maps (shares 0.13-0.19
    for seed 7); no season is flagged and the report has no MODEL UNSURE note."""
    summary = pd.read_csv(demo_run / "summary.csv")
    assert summary["model_uncertain_share"].between(0.0, 0.35).all()
    assert not summary["model_doubtful"].any()
    checks = json.loads((demo_run / "manifest.json").read_text())["model_checks"]
    assert [round(checks[p]["model_uncertain_share"], 4) for p in summary["period"]] == \
        [round(v, 4) for v in summary["model_uncertain_share"]]
    assert "MODEL UNSURE" not in (demo_run / "report.md").read_text()
    # the rules' second opinion reached the manifest from the tasks: on its own simulator the fused map keeps what
    # the rules find (nothing left out), so no season is flagged
    for p in summary["period"]:
        c = checks[p]
        assert c["rules_m2"] > 0 and c["footprint_m2"] > 0 and c["rules_dropped_m2"] < 0.05 * c["rules_m2"], (p, c)
        assert c["rules_disagree"] is False
    assert "RULES DISAGREE" not in (demo_run / "report.md").read_text()

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
    assert "numpy" in man["versions"] and man["parameters"]["detect"]["method"] == "rules"


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

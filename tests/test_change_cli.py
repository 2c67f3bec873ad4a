"""``minewatch change RUN_DIR``: recompute sites, change, tables and the report from a finished run folder."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo.cli.main import main
from runfolder import PERIODS, run_folder  # noqa: F401  (pytest fixture)

#: Outputs that ``change`` must (re)write from the class maps.
DERIVED = ["summary.csv", "claims.csv", "change.geojson", "footprints.gpkg", "report.md", "report.html", "growth.png",
           "map.png", "briefing_map.png", "minewatch.qgs"] + [f"footprints_{p}.geojson" for p in PERIODS]


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def run_copy(run_folder, tmp_path):  # noqa: F811
    dst = tmp_path / "run"
    shutil.copytree(run_folder.path, dst)
    return dst


def test_change_rebuilds_every_output_from_class_maps(run_folder, run_copy, capsys):  # noqa: F811
    before = pd.read_csv(run_copy / "summary.csv")
    for name in DERIVED:
        (run_copy / name).unlink()
    code, out, err = _cli(["change", str(run_copy)], capsys)
    assert code == 0, err
    for name in DERIVED:
        assert (run_copy / name).stat().st_size > 0, name
    after = pd.read_csv(run_copy / "summary.csv")
    pd.testing.assert_frame_equal(after, before)
    # Counts come from the drawing in runfolder.py, independent of the code under test.
    assert list(after["site_count"]) == [run_folder.expected[p].n_sites for p in PERIODS]
    assert list(after["footprint_area_m2"]) == pytest.approx([run_folder.expected[p].footprint_area_m2 for p in PERIODS])
    change = gpd.read_file(run_copy / "change.geojson")
    got = {k: v.value_counts().to_dict() for k, v in change.groupby(["period_from", "period_to"])["change"]}
    assert got == run_folder.changes
    assert "Growth 2019-20 → 2022-23" in out and str(run_copy / "report.html") in out
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["recomputed"][-1]["command"] == "change"
    html = (run_copy / "report.html").read_text()
    # growth chart, map over the task composite, briefing map; the interactive map holds the composite as WebP
    assert html.count('<figure><img alt="') == 3 and html.count('id="map"') == 1
    assert html.count("data:image/webp;base64,") == 1


def test_change_applies_new_site_rules(run_copy, tmp_path, capsys):
    cfg = tmp_path / "sites.toml"
    cfg.write_text("[sites]\nlink_distance_m = 3000.0\n", encoding="utf-8")
    method_before = json.loads((run_copy / "manifest.json").read_text())["parameters"]["detect"]["method"]
    code, _, err = _cli(["change", str(run_copy), "--config", str(cfg)], capsys)
    assert code == 0, err
    summary = pd.read_csv(run_copy / "summary.csv")
    assert list(summary["site_count"]) == [1, 1, 1, 1]  # every patch is within 3 km of the others
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["parameters"]["sites"]["link_distance_m"] == 3000.0
    assert manifest["parameters"]["detect"]["method"] == method_before  # untouched by the override


def test_change_without_coverage_json_uses_task_records(run_copy, capsys):
    (run_copy / "coverage.json").unlink()
    code, _, err = _cli(["change", str(run_copy)], capsys)
    assert code == 0, err
    s = pd.read_csv(run_copy / "summary.csv")
    # Only the last period has task records (full clear coverage); the others cannot be trusted.
    assert list(s["low_confidence"]) == [True, True, True, False]
    assert s["clear_fraction"].iloc[-1] == pytest.approx(1.0)
    assert "uncertain" in s["trend"].iloc[2]  # a drop next to a low-coverage period is never "decline"


def test_change_without_manifest_finds_periods_from_class_maps(run_copy, capsys):
    (run_copy / "manifest.json").unlink()
    shutil.rmtree(run_copy / "tasks")
    (run_copy / "map.png").unlink()
    code, _, err = _cli(["change", str(run_copy)], capsys)
    assert code == 0, err
    assert list(pd.read_csv(run_copy / "summary.csv")["period"]) == list(PERIODS)
    assert not (run_copy / "map.png").exists()  # no composite left to draw on: no map, no crash
    assert not (run_copy / "manifest.json").exists()


@pytest.mark.parametrize("make,needle", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "not a minewatch run folder"),
    (lambda d: (d.mkdir(), (d / "manifest.json").write_text("{not json")), "not valid JSON"),
])
def test_change_refuses_non_run_folders(tmp_path, capsys, make, needle):
    d = tmp_path / "notarun"
    make(d)
    code, _, err = _cli(["change", str(d)], capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], err


def test_change_refuses_corrupt_manifest_parameters(run_copy, capsys):
    man = json.loads((run_copy / "manifest.json").read_text())
    man["parameters"]["sites"]["extent"] = "blob"
    (run_copy / "manifest.json").write_text(json.dumps(man))
    code, _, err = _cli(["change", str(run_copy)], capsys)
    assert code == 2 and "manifest.json parameters" in err and "[sites]" in err and "--config" in err


def test_quicklook_from_task_composites_is_decimated_for_large_aois(run_copy, monkeypatch):
    import rasterio

    import geo.results.quicklook
    from geo.results.quicklook import rgb_from_tasks
    from geo.results.export import read_raster

    monkeypatch.setattr(geo.results.quicklook, "QUICKLOOK_PX", 64)  # the 200 px test AOI now counts as "large"
    grid = read_raster(run_copy / f"classmap_{PERIODS[-1]}.tif")[1]
    rgb, qgrid = rgb_from_tasks(run_copy, PERIODS[-1], grid)
    assert rgb.shape == (3, 50, 50) and qgrid.resolution == 40.0 and qgrid.bounds == grid.bounds
    with rasterio.open(run_copy / "tasks" / PERIODS[-1] / "t0" / "composite.tif") as src:
        red = src.read(list(src.descriptions).index("B04") + 1)
    block = red[20:24, 28:32] / 10000.0  # quicklook pixel (5, 7) samples one pixel of this 4×4 block
    assert np.isclose(block, rgb[0, 5, 7]).any(), (rgb[0, 5, 7], block)
    assert rgb_from_tasks(run_copy, "1999-00", grid) is None


def test_growth_from_nothing_is_said_not_printed_as_nan(tmp_path):
    """A first season with no footprint (a tiny AOI, an area mined later): the console says why growth is not
    defined instead of printing "+nan %"."""
    from types import SimpleNamespace

    import pandas as pd

    from geo.cli.run import print_summary

    rows = [dict(period="2019-20", footprint_area_m2=0.0, pond_area_m2=0.0, site_count=0, clear_fraction=1.0,
                 low_confidence=False, footprint_growth_pct=float("nan"), site_count_growth_pct=float("nan")),
            dict(period="2020-21", footprint_area_m2=5e3, pond_area_m2=0.0, site_count=1, clear_fraction=1.0,
                 low_confidence=False, footprint_growth_pct=float("nan"), site_count_growth_pct=float("nan"))]
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    lines = []
    print_summary(SimpleNamespace(summary_csv=tmp_path / "summary.csv", out_dir=tmp_path,
                                  report_html=tmp_path / "report.html"), echo=lines.append)
    growth = lines[-1]
    assert "nan" not in growth and "footprint not defined (no footprint in 2019-20)" in growth
    assert "sites not defined (no site in 2019-20)" in growth

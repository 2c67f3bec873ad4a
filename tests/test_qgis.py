"""The GeoPackage and GeoJSON outputs opened in real QGIS (Debian python3-qgis, headless).

QGIS runs in the system Python (``/usr/bin/python3``) as a subprocess executing ``tests/qgis_check.py``, with
``QT_QPA_PLATFORM=offscreen``. Expectations come from the drawing in ``tests/runfolder.py`` (pixel counts ×
100 m²), not from minewatch's own tables. QGIS's render is saved as ``qgis_render.png`` in the run folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import pytest

from runfolder import run_folder  # noqa: F401  (pytest fixture)

SYSTEM_PYTHON = Path("/usr/bin/python3")
CHECK = Path(__file__).with_name("qgis_check.py")


@lru_cache(maxsize=1)
def _qgis_missing() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} not found"
    r = subprocess.run([str(SYSTEM_PYTHON), "-c", "import qgis.core"], env=_env(), capture_output=True, timeout=60)
    return None if r.returncode == 0 else "the system Python has no qgis module (apt-get install python3-qgis qgis-providers)"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "GDAL_DATA", "PROJ_LIB", "PROJ_DATA")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    runtime = Path(os.environ.get("TMPDIR", "/tmp")) / f"minewatch-qgis-runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    return env


@pytest.fixture
def qgis():
    reason = _qgis_missing()
    if reason:
        pytest.skip(f"QGIS unavailable: {reason}; .ci/run installs python3-qgis")

    def run(spec: dict, tmp: Path) -> tuple[dict, str]:
        path = tmp / "expect.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        r = subprocess.run([str(SYSTEM_PYTHON), str(CHECK), str(path)], env=_env(), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, f"qgis_check.py failed ({r.returncode}):\n{r.stderr[-3000:]}"
        return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr

    return run


FOOTPRINT_STYLE = {"renderer": "categorizedSymbol", "attr": "class_name", "categories": ["leaching_pond", "cleared_land"]}


def expectations(rf, gpkg: Path) -> dict:
    layers, geojson = {}, {}
    for p in rf.periods:
        e = rf.expected[p]
        layers[f"footprints_{p}"] = {"crs": "EPSG:32647", "count": e.n_features, "area_m2": e.footprint_area_m2,
                                     "style": FOOTPRINT_STYLE}
        layers[f"sites_{p}"] = {"crs": "EPSG:32647", "count": e.n_sites, "style": {"renderer": "singleSymbol"}}
        geojson[str(rf.path / f"footprints_{p}.geojson")] = {"crs": "EPSG:4326", "count": e.n_features,
                                                              "area_m2": e.footprint_area_m2, "area_crs": "EPSG:32647"}
    used = sorted({c for ch in rf.changes.values() for c in ch})
    layers["change"] = {"crs": "EPSG:32647", "count": rf.n_change_features,
                        "style": {"renderer": "categorizedSymbol", "attr": "change", "categories": used}}
    geojson[str(rf.path / "change.geojson")] = {"crs": "EPSG:4326", "count": rf.n_change_features}
    last = rf.periods[-1]
    return {"gpkg": str(gpkg), "gpkg_layers": layers, "geojson": geojson, "area_rtol": 0.005,
            "render_layers": [f"sites_{last}", f"footprints_{last}"], "png": str(rf.path / "qgis_render.png")}


@pytest.mark.external
def test_qgis_opens_outputs_valid_styled_and_measured(run_folder, qgis, tmp_path):  # noqa: F811
    t0 = time.perf_counter()
    res, stderr = qgis(expectations(run_folder, run_folder.path / "footprints.gpkg"), tmp_path)
    elapsed = time.perf_counter() - t0
    assert res["errors"] == [], "\n".join(res["errors"])
    assert res["ok"] and res["qgis_version"].startswith("3.")
    last = run_folder.periods[-1]
    fp = res["layers"][f"footprints_{last}"]
    # QGIS's planar and ellipsoidal areas both agree with the drawing (UTM scale error here is < 0.1 %).
    assert fp["area_m2"] == pytest.approx(run_folder.expected[last].footprint_area_m2, rel=1e-6)
    assert fp["area_ellipsoidal_m2"] == pytest.approx(fp["area_m2"], rel=0.005)
    colours = {c["value"]: c["color"] for c in fp["categories"]}
    assert colours == {"leaching_pond": "#00c8dc", "cleared_land": "#e67828"}
    render = res["render"]
    assert render["painted_fraction"] > 0.01 and all(n >= 20 for n in render["category_pixels"][f"footprints_{last}"].values())
    assert Path(render["png"]).stat().st_size > 3000
    assert "partially supported" not in stderr, "QGIS's GDAL warns about the GeoPackage version"
    assert elapsed < 60


@pytest.mark.external
def test_qgis_check_reports_missing_style_and_wrong_count(run_folder, qgis, tmp_path):  # noqa: F811
    """The checker can fail: without ``layer_styles`` QGIS falls back to a single symbol, and a wrong count shows."""
    gpkg = tmp_path / "unstyled.gpkg"
    shutil.copy(run_folder.path / "footprints.gpkg", gpkg)
    con = sqlite3.connect(gpkg)
    con.execute("DELETE FROM layer_styles")
    con.commit()
    con.close()
    last = run_folder.periods[-1]
    e = run_folder.expected[last]
    spec = {"gpkg": str(gpkg), "gpkg_layers": {f"footprints_{last}": {
        "crs": "EPSG:32647", "count": e.n_features + 1, "area_m2": e.footprint_area_m2, "style": FOOTPRINT_STYLE}}}
    res, _ = qgis(spec, tmp_path)
    assert not res["ok"]
    assert any("layer_styles" in m for m in res["errors"]), res["errors"]
    assert any(f"{e.n_features} features != expected {e.n_features + 1}" in m for m in res["errors"]), res["errors"]
    assert res["layers"][f"footprints_{last}"]["renderer"] == "singleSymbol"


_SAMPLE_PROBE = """
import json, sys
from qgis.core import QgsApplication, QgsVectorLayer
app = QgsApplication([], False); app.initQgis()
lyr = QgsVectorLayer(sys.argv[1] + "|layername=sample", "sample", "ogr")
idx = lyr.fields().indexOf("reference")
w = lyr.editorWidgetSetup(idx)
r = lyr.renderer()
print(json.dumps({"valid": lyr.isValid(), "count": lyr.featureCount(), "widget": w.type(), "config": w.config(),
                  "renderer": r.type(), "attr": r.classAttribute() if r.type() == "categorizedSymbol" else None,
                  "field_type": lyr.fields().field(idx).typeName(), "crs": lyr.crs().authid()}, default=str))
"""


@pytest.mark.external
def test_qgis_opens_the_sample_with_its_labelling_form(run_folder, qgis, tmp_path):  # noqa: F811
    """``minewatch sample``'s GeoPackage: QGIS applies the reference style and a value-map form on ``reference``."""
    from geo.results.sampling import draw_run_sample, write_sample

    gpkg = write_sample(draw_run_sample(run_folder.path, 60), tmp_path / "sample.gpkg")
    r = subprocess.run([str(SYSTEM_PYTHON), "-c", _SAMPLE_PROBE, str(gpkg)], env=_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["valid"] and rep["count"] == 60 * len(run_folder.periods) and rep["crs"] == "EPSG:32647"
    assert rep["renderer"] == "categorizedSymbol" and rep["attr"] == "reference"
    assert rep["widget"] == "ValueMap", rep
    values = {v for m in rep["config"]["map"] for v in m.values()}
    assert values == {"0", "1", "2"}, rep["config"]
    assert "int" in rep["field_type"].lower(), rep["field_type"]


def _season_dates(label: str) -> list[str]:
    y = int(label[:4])  # dry season: 1 November – 30 April, from the drawing's season names
    return [f"{y}-11-01", f"{y + 1}-04-30"]


@pytest.mark.external
def test_qgis_steps_through_seasons_and_reads_class_rasters(run_folder, qgis, tmp_path):  # noqa: F811
    """QGIS's temporal controller: every layer is time-aware on Date fields; a season renders only that season.

    The render of every footprint and site layer at one season's dates must paint what that season's layers
    paint alone, and less than all seasons together. Renders are saved in the run folder for review
    (``qgis_season_temporal.png``, ``qgis_season_only.png``, ``qgis_all_seasons.png``).
    """
    rf = run_folder
    layers = {}
    for p in rf.periods:
        layers[f"footprints_{p}"] = {"temporal": True, "style": FOOTPRINT_STYLE}
        layers[f"sites_{p}"] = {"temporal": True, "labels": "site_id"}
    layers["change"] = {"temporal": True}
    pairs = list(rf.changes)
    for a, b in pairs:
        layers[f"change_{a}_to_{b}"] = {"temporal": True, "count": sum(rf.changes[(a, b)].values()),
                                        "style": {"renderer": "categorizedSymbol", "attr": "change",
                                                  "categories": sorted(rf.changes[(a, b)])}}
    season = rf.periods[1]
    every = [n for p in rf.periods for n in (f"sites_{p}", f"footprints_{p}")]
    spec = {
        "gpkg": str(rf.path / "footprints.gpkg"), "gpkg_layers": layers, "project": str(rf.path / "minewatch.qgs"),
        # change records are dated by their later season: QGIS keeps exactly that transition's sites
        "temporal_counts": [{"layer": "change", "range": _season_dates(b), "count": sum(rf.changes[(a, b)].values())}
                            for a, b in pairs]
                           + [{"layer": f"footprints_{p}", "range": _season_dates(q),
                               "count": rf.expected[p].n_features if p == q else 0}
                              for p in rf.periods for q in rf.periods[:2]],
        "season_render": {"layers": every, "only": [f"sites_{season}", f"footprints_{season}"],
                          "range": _season_dates(season), "png": str(rf.path / "qgis_season_temporal.png"),
                          "png_only": str(rf.path / "qgis_season_only.png"),
                          "png_all": str(rf.path / "qgis_all_seasons.png")},
        "rasters": {str(rf.path / f"classmap_{p}.tif"): {
            "renderer": "paletted", "nodata": 255.0,
            "labels": {"0": "Background (seen, not mined)", "1": "Cleared land", "2": "Leaching pond"}}
            for p in rf.periods[:1]},
    }
    res, _ = qgis(spec, tmp_path)
    assert res["errors"] == [], "\n".join(res["errors"])
    fp = res["layers"][f"footprints_{season}"]
    assert fp["field_types"]["period_start"].lower() == "date" and fp["temporal"]["active"]
    sr = res["season_render"]
    painted = {k: v["painted_fraction"] for k, v in sr.items()}
    assert painted["temporal"] == pytest.approx(painted["only_season"], abs=0.002), painted
    assert painted["all_seasons"] > painted["temporal"] + 0.002, painted
    raster = res["rasters"][str(rf.path / f"classmap_{rf.periods[0]}.tif")]
    assert raster["color_table"] >= 3 and raster["nodata"] == 255.0
    proj = res["project"]
    assert all(v["valid"] and v["temporal"] for v in proj["layers"].values()), proj["layers"]
    assert proj["time_range"] == [_season_dates(rf.periods[0])[0], _season_dates(rf.periods[-1])[1]]
    assert len(proj["layers"]) == 2 * len(rf.periods) + 1 + len(pairs) + len(rf.periods)  # + class rasters

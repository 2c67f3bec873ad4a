"""What GIS tools read from a run folder: layer names, Date fields, class rasters, confidence unit, ogr2ogr.

Expectations come from the drawing in ``tests/runfolder.py`` (rectangles, a never-clear strip) and from the season
calendar (1 November – 30 April), not from minewatch's own tables.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio

from runfolder import GRID, UNSEEN, run_folder  # noqa: F401  (pytest fixture)

OGR2OGR = shutil.which("ogr2ogr")


def _season(label: str) -> tuple[str, str]:
    y = int(label[:4])
    return f"{y}-11-01", f"{y + 1}-04-30"


def test_geojson_name_is_the_layer_name_not_the_temporary_file(run_folder):  # noqa: F811
    for path in [*run_folder.path.glob("footprints_*.geojson"), run_folder.path / "change.geojson"]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["name"] == path.stem, (path.name, doc["name"])
        assert ".partial-" not in path.read_text(encoding="utf-8")


def test_every_layer_has_period_dates(run_folder):  # noqa: F811
    gpkg = run_folder.path / "footprints.gpkg"
    names = [n for n, _ in pyogrio.list_layers(gpkg)]
    for p in run_folder.periods:
        for layer in (f"footprints_{p}", f"sites_{p}"):
            info = pyogrio.read_info(gpkg, layer=layer)
            types = dict(zip(info["fields"], info["ogr_types"]))
            assert types["period_start"] == types["period_end"] == "OFTDate", (layer, types)
            df = pyogrio.read_dataframe(gpkg, layer=layer)
            got = {(str(a)[:10], str(b)[:10]) for a, b in zip(df["period_start"], df["period_end"])}
            assert got == {_season(p)}, (layer, got)
        gj = pyogrio.read_info(run_folder.path / f"footprints_{p}.geojson")
        assert dict(zip(gj["fields"], gj["ogr_types"]))["period_start"] == "OFTDate"
    # change: dated by the later season; one layer per transition with that transition's records only
    change = pyogrio.read_dataframe(gpkg, layer="change")
    for (a, b), counts in run_folder.changes.items():
        rows = change[(change["period_from"] == a) & (change["period_to"] == b)]
        assert {str(v)[:10] for v in rows["period_start"]} == {_season(b)[0]}
        assert f"change_{a}_to_{b}" in names
        part = pyogrio.read_dataframe(gpkg, layer=f"change_{a}_to_{b}")
        assert dict(part["change"].value_counts()) == counts


def test_confidence_is_percent_everywhere(run_folder):  # noqa: F811
    last = run_folder.periods[-1]
    fp = pyogrio.read_dataframe(run_folder.path / f"footprints_{last}.geojson")
    assert "confidence" not in fp.columns
    # the drawing's confidence pixels are 70–95 %
    assert fp["confidence_pct"].between(70, 95).all(), fp["confidence_pct"].tolist()
    with rasterio.open(run_folder.path / f"confidence_{last}.tif") as src:
        assert src.descriptions[0] == "confidence_pct" and src.nodata == 255
        a = src.read(1)
    assert a[a != 255].max() <= 100


def test_class_raster_explains_itself(run_folder):  # noqa: F811
    p = run_folder.periods[0]
    path = run_folder.path / f"classmap_{p}.tif"
    with rasterio.open(path) as src:
        assert src.nodata == 255 and src.descriptions[0] == "class"
        cmap = src.colormap(1)
        a = src.read(1)
    assert cmap[2][:3] == (0, 200, 220) and cmap[1][:3] == (230, 120, 40) and cmap[0][3] == 255
    # the never-clear strip is "not observed" (nodata), the rest of the grid background or mining
    assert (a[UNSEEN] == 255).all() and not (np.delete(a, np.s_[185:200], axis=0) == 255).any()
    assert (a == 0).sum() > 0.5 * GRID.width * GRID.height
    aux = (path.parent / (path.name + ".aux.xml")).read_text(encoding="utf-8")
    cats = aux.split("<CategoryNames>")[1]
    assert cats.startswith("<Category>background</Category><Category>cleared_land</Category>"
                           "<Category>leaching_pond</Category>")
    assert "paletted" in path.with_suffix(".qml").read_text(encoding="utf-8")


def test_not_observed_is_neither_background_nor_mined(tmp_path):
    """Polygonising a class map: 255 never becomes a footprint and adds no area."""
    from geo.results.rasters import write_classmap
    from geo.results.export import read_raster
    from geo.stages.vectorize import polygonize

    a = np.zeros(GRID.shape, np.uint8)
    a[10:20, 10:20] = 2
    a[100:200, :] = 255
    write_classmap(a, GRID, tmp_path / "c.tif")
    back, grid = read_raster(tmp_path / "c.tif")
    fp = polygonize(back, grid)
    assert len(fp) == 1 and fp["area_m2"].sum() == pytest.approx(100 * GRID.pixel_area)


@pytest.mark.external
@pytest.mark.skipif(OGR2OGR is None, reason="ogr2ogr not installed (apt-get install gdal-bin; .ci/run installs it)")
def test_outputs_round_trip_through_ogr2ogr(run_folder, tmp_path):  # noqa: F811
    """The real ``ogr2ogr`` converts every GeoJSON and the GeoPackage, keeping counts, names and Date fields."""
    last = run_folder.periods[-1]
    out = tmp_path / "converted.gpkg"
    for src in [run_folder.path / f"footprints_{last}.geojson", run_folder.path / "change.geojson"]:
        r = subprocess.run([OGR2OGR, "-f", "GPKG", "-update", "-append", str(out), str(src)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    layers = dict(pyogrio.list_layers(out))
    assert set(layers) == {f"footprints_{last}", "change"}, layers
    info = pyogrio.read_info(out, layer=f"footprints_{last}")
    assert info["features"] == run_folder.expected[last].n_features
    assert dict(zip(info["fields"], info["ogr_types"]))["period_start"] == "OFTDate"
    back = tmp_path / "back.geojson"
    r = subprocess.run([OGR2OGR, "-f", "GeoJSON", str(back), str(run_folder.path / "footprints.gpkg"),
                        f"sites_{last}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(back.read_text(encoding="utf-8"))
    assert doc["name"] == f"sites_{last}" and len(doc["features"]) == run_folder.expected[last].n_sites
    assert doc["features"][0]["properties"]["period_start"] == _season(last)[0]


def test_detect_gpkg_is_styled(tmp_path, utm_grid):
    """``minewatch detect --out x.gpkg`` stores its QGIS style in the GeoPackage."""
    import geopandas as gpd
    from shapely.geometry import box

    from geo.results.export import write_gpkg
    from geo.results.layers import confidence_pct
    from geo.results.styles import default_styles

    gdf = gpd.GeoDataFrame({"class": [2], "class_name": ["leaching_pond"], "area_m2": [900.0], "confidence": [0.5]},
                           geometry=[box(431000, 2839000, 431030, 2839030)], crs=32647)
    p = write_gpkg({"footprints": confidence_pct(gdf)}, tmp_path / "d.gpkg",
                   styles=default_styles(["footprints"], temporal=False))
    con = sqlite3.connect(p)
    (qml,) = con.execute("SELECT styleQML FROM layer_styles WHERE f_table_name='footprints'").fetchone()
    con.close()
    assert "categorizedSymbol" in qml and "<temporal" not in qml
    assert pyogrio.read_dataframe(p)["confidence_pct"].tolist() == [50.0]


def test_detect_cli_writes_styles(tmp_path):
    """The CLI path itself (rules on a tiny synthetic image) leaves a styled GeoPackage."""
    from click.testing import CliRunner

    from geo.cli.detect import command

    import rasterio as rio
    from affine import Affine

    img = tmp_path / "scene.tif"
    data = np.full((6, 64, 64), 800, np.uint16)
    data[:, 20:30, 20:30] = np.array([900, 1300, 1100, 700, 400, 300], np.uint16)[:, None, None]  # pond-like water
    with rio.open(img, "w", driver="GTiff", width=64, height=64, count=6, dtype="uint16", crs="EPSG:32647",
                  transform=Affine(10, 0, 431000, 0, -10, 2840000)) as dst:
        dst.write(data)
        for i, b in enumerate(("B02", "B03", "B04", "B08", "B11", "B12"), start=1):
            dst.set_band_description(i, b)
    out = tmp_path / "out.gpkg"
    res = CliRunner().invoke(command, [str(img), "--out", str(out), "--method", "rules"])
    assert res.exit_code == 0, res.output
    con = sqlite3.connect(out)
    rows = con.execute("SELECT f_table_name FROM layer_styles").fetchall()
    con.close()
    assert rows == [("footprints",)]


def test_briefing_map_furniture_helpers():
    """Round scale-bar lengths, panel choice, and the true-north arrow's rotation (grid convergence)."""
    from geo.results.cartography import convergence_deg, nice_step, pick_panels

    assert pick_panels([str(i) for i in range(9)]) == ["0", "2", "3", "5", "6", "8"]
    assert pick_panels(["a", "b"]) == ["a", "b"]
    assert [nice_step(v, target=1) for v in (1100.0, 480.0, 11_000.0, 2600.0)] == [2000.0, 500.0, 20_000.0, 5000.0]
    # UTM 47N's central meridian is 99°E; at 25.67°N, 0.7° off it, convergence ≈ 0.7° × sin(25.67°) ≈ 0.30°,
    # with opposite signs on either side of the meridian.
    x_w, y = GRID.transform.c, GRID.transform.f  # 98.3°E
    west = convergence_deg(GRID.crs, x_w, y)
    east = convergence_deg(GRID.crs, 1_000_000 - x_w, y)
    assert abs(west) == pytest.approx(0.30, abs=0.02) and west * east < 0


def test_briefing_map_is_written_with_every_season(run_folder):  # noqa: F811
    from PIL import Image

    path = run_folder.path / "briefing_map.png"
    with Image.open(path) as im:
        w, h = im.size
    assert w >= 1000 and h >= 800
    html = (run_folder.path / "report.html").read_text(encoding="utf-8")
    assert 'alt="Briefing map (seasons side by side)"' in html


def test_webmap_geometry_packing_round_trips(run_folder):  # noqa: F811
    """The map's packed integer-delta coordinates decode to the GeoJSON's to within the stated precision."""
    import geopandas as gpd

    from geo.results.webmap import PRECISION, feature_collection, unpack_ring

    last = run_folder.periods[-1]
    gj = gpd.read_file(run_folder.path / f"footprints_{last}.geojson")
    fc = feature_collection(gj.to_crs(32647), ("class_name", "area_m2"))
    assert fc["q"] == PRECISION and len(fc["features"]) == len(gj)
    for f, geom in zip(fc["features"], gj.geometry):
        ring = np.array(unpack_ring(f["g"]["c"][0], fc["q"]))
        assert np.abs(ring - np.asarray(geom.exterior.coords)).max() <= 1.5 * 10.0**-PRECISION


def test_webmap_opens_on_the_aoi_when_nothing_was_found():
    """A run with no footprints still centres its map on the AOI (not on 0°, 0°)."""
    from geo.results.layers import confidence_pct, with_period
    from geo.results.sites import empty_sites
    from geo.results.webmap import map_data
    from geo.stages.vectorize import empty_footprints

    fp = confidence_pct(with_period(empty_footprints(GRID.crs), "2020-21"))
    st = with_period(empty_sites(GRID.crs), "2020-21")
    d = map_data([("2020-21", fp, st)], dates={}, imagery={}, attribution="x", area=GRID)
    (s, w), (n, e) = d["bounds"]
    assert 98.3 < w < e < 98.34 and 25.65 < s < n < 25.68, d["bounds"]
    assert d["footprints"]["2020-21"]["features"] == []

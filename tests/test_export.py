"""Writers: RFC 7946 GeoJSON, GeoPackage layers with QGIS styles, GeoTIFF, atomic writes."""

from __future__ import annotations

import json
import sqlite3

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from geo.errors import CrsError, OutputError
from geo.results.export import read_raster, write_geojson, write_gpkg, write_raster
from geo.fsutil import atomic_path, write_text
from geo.results.styles import default_styles


def _fp():
    return gpd.GeoDataFrame({"class": [2, 1], "class_name": ["leaching_pond", "cleared_land"], "area_m2": [900.0, 4000.0]},
                            geometry=[box(431000, 2839000, 431030, 2839030), box(431100, 2839000, 431200, 2839040)],
                            crs=32647)


def test_geojson_is_rfc7946_wgs84(tmp_path):
    p = write_geojson(_fp(), tmp_path / "f.geojson")
    doc = json.loads(p.read_text())
    assert "crs" not in doc or doc["crs"]["properties"]["name"].endswith("CRS84")
    x, y = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert 98 < x < 99 and 25 < y < 26
    assert doc["features"][0]["properties"]["area_m2"] == 900.0
    back = gpd.read_file(p)
    assert back.crs.to_epsg() == 4326 and len(back) == 2


def test_geojson_refuses_missing_crs(tmp_path):
    gdf = _fp().set_crs(None, allow_override=True)
    with pytest.raises(CrsError):
        write_geojson(gdf, tmp_path / "x.geojson")


def test_gpkg_layers_and_styles(tmp_path):
    layers = {"footprints_2020-21": _fp(), "footprints_2021-22": _fp()}
    p = write_gpkg(layers, tmp_path / "f.gpkg", styles=default_styles(list(layers)))
    import pyogrio
    names = [n for n, _ in pyogrio.list_layers(p)]
    assert set(layers) <= set(names)
    con = sqlite3.connect(p)
    rows = con.execute("SELECT f_table_name, f_geometry_column, useAsDefault, styleQML FROM layer_styles").fetchall()
    con.close()
    assert {r[0] for r in rows} == set(layers)
    assert all(r[1] == "geom" and r[2] == 1 and "categorizedSymbol" in r[3] for r in rows)


def test_raster_roundtrip(tmp_path, utm_grid):
    a = np.arange(utm_grid.width * utm_grid.height, dtype=np.uint16).reshape(utm_grid.shape)
    write_raster(a, utm_grid, tmp_path / "r.tif")
    b, g = read_raster(tmp_path / "r.tif")
    assert np.array_equal(a, b) and g == utm_grid


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "x.txt"
    write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["x.txt"]


def test_unwritable_folder_is_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_text(blocker / "sub" / "y.txt", "z")

"""`minewatch train --config`: TOML parsing, label rasterising (polygons and points), end-to-end retraining."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS
from shapely.geometry import Point, box

from geo.bands import ANALYSIS_BANDS
from geo.cli.main import cli
from geo.errors import ConfigError, CrsError, RasterError
from geo.grid import GeoGrid
from models.data import rasterize_labels
from models.train import load_job

GRID = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 431000, 0, -10, 2840000), 64, 64)


def _labels(tmp_path, rows, crs=32647):
    gdf = gpd.GeoDataFrame({"class": [r[0] for r in rows]}, geometry=[r[1] for r in rows], crs=crs)
    p = tmp_path / "labels.geojson"
    gdf.to_file(p, driver="GeoJSON")
    return p


def test_rasterize_polygons_and_points(tmp_path):
    p = _labels(tmp_path, [("cleared_land", box(431100, 2839400, 431300, 2839600)),
                           (2, Point(431200, 2839500)), ("pond", Point(431500, 2839700))])
    y = rasterize_labels(p, GRID, point_radius_m=20)
    assert (y == 1).sum() + ((y == 2) & (np.arange(64)[None, :] < 40)).sum() == 400  # 200 m x 200 m box
    # a 20 m disc on a 10 m grid: ~pi*2^2 = 12.6 px each; ponds win over cleared land
    assert 8 <= (y[:, :40] == 2).sum() <= 16 and y[50, 20] == 2
    assert 8 <= (y[:, 40:] == 2).sum() <= 16
    ign = rasterize_labels(p, GRID, unlabelled=255)
    assert (ign == 255).sum() == (y == 0).sum()


def test_rasterize_reprojects_wgs84_labels(tmp_path):
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(32647, 4326, always_xy=True).transform(431205, 2839505)
    p = _labels(tmp_path, [(2, Point(lon, lat))], crs=4326)
    y = rasterize_labels(p, GRID, point_radius_m=15)
    r, c = np.argwhere(y == 2).mean(0)
    assert abs(r - 49.5) < 1.5 and abs(c - 20.5) < 1.5


def test_rasterize_errors(tmp_path):
    p = _labels(tmp_path, [("volcano", box(431100, 2839400, 431300, 2839600))])
    with pytest.raises(RasterError, match="unknown class"):
        rasterize_labels(p, GRID)
    geo = GeoGrid(CRS.from_epsg(4326), Affine(0.0001, 0, 98, 0, -0.0001, 25.7), 10, 10)
    with pytest.raises(CrsError, match="projected"):
        rasterize_labels(p, geo)


def test_load_job_validation(tmp_path):
    t = tmp_path / "a.toml"
    t.write_text('output = "m.pt"\nfoo = 1\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_job(t)
    t.write_text('[train]\nsteps = 2\nwobble = 3\n')
    with pytest.raises(ConfigError, match="wobble"):
        load_job(t)
    t.write_text('[[images]]\npath = "x.tif"\n')
    with pytest.raises(ConfigError, match="labels"):
        load_job(t)
    t.write_text('[train]\ncrop = 30\n')
    with pytest.raises(ConfigError, match="multiple"):
        load_job(t)
    t.write_text('output = "out/m.pt"\ninit = "none"\n[simulator]\nseeds = [3, 5]\nsize = 64\n[train]\nsteps = 7\n')
    job = load_job(t)
    assert job.output == tmp_path / "out" / "m.pt" and job.init is None
    assert job.simulator_seeds == (3, 4) and job.train.steps == 7


def test_cli_train_then_detect_with_new_weights(tmp_path):
    pytest.importorskip("geo.simulate")
    from geo.export import write_raster
    from geo.vectorize import polygonize
    from models.data import simulator_scene

    scene, truth = simulator_scene(777001, 96)
    dn = np.round(scene.data * 10000).clip(1, 65535).astype("uint16")
    write_raster(dn, scene.grid, tmp_path / "scene.tif", nodata=0, descriptions=ANALYSIS_BANDS)
    labels = polygonize(truth, scene.grid)
    labels.to_file(tmp_path / "labels.gpkg", driver="GPKG")
    (tmp_path / "t.toml").write_text(
        'output = "new.pt"\ninit = "none"\n[[images]]\npath = "scene.tif"\nlabels = "labels.gpkg"\n'
        '[train]\nsteps = 4\nbatch_size = 2\ncrop = 32\nwidths = [8, 12, 16]\nthreads = 1\n')
    r = CliRunner().invoke(cli, ["train", "--config", str(tmp_path / "t.toml")])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "new.json").read_text())
    assert card["bands"] == list(ANALYSIS_BANDS) and card["architecture"]["widths"] == [8, 12, 16]
    assert card["training"]["config"]["steps"] == 4
    r = CliRunner().invoke(cli, ["detect", str(tmp_path / "scene.tif"), "--out", str(tmp_path / "fp.geojson"),
                                 "--method", "model", "--weights", str(tmp_path / "new.pt"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train", "--config", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2

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
from models.train_job import load_job

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
    pytest.importorskip("geo.sim.scene")
    from geo.results.export import write_raster
    from geo.stages.vectorize import polygonize
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


# -- refused [[images]] inputs: one Error line, a documented exit code, nothing trained (docs/ERRORS.md 80–93) -------

TRAIN = '[train]\nsteps = 2\nbatch_size = 2\ncrop = 32\nwidths = [8, 12, 16]\nthreads = 1\n'


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A 64 x 64 px L2A-DN GeoTIFF (simulator scene, UTM 47N, x 431000–431640, y 2839360–2840000) and a profile."""
    import rasterio

    from geo.results.export import write_raster
    from models.data import simulator_scene

    root = tmp_path_factory.mktemp("train-images")
    scene, _ = simulator_scene(777001, 64)
    dn = np.round(scene.data * 10000).clip(1, 65535).astype("uint16")
    write_raster(dn, scene.grid, root / "scene.tif", nodata=0, descriptions=ANALYSIS_BANDS)
    with rasterio.open(root / "scene.tif") as src:
        prof, data = src.profile, src.read()
    return root / "scene.tif", scene.grid, prof, data


def _raster(tmp_path, image, name="img.tif", data=None, descriptions=ANALYSIS_BANDS, **profile):
    import rasterio

    _, _, prof, dn = image
    prof = {**prof, **profile}
    if prof.get("crs") is None:
        prof.pop("crs", None)
    data = dn if data is None else data
    prof["count"], prof["dtype"] = data.shape[0], str(data.dtype)
    with rasterio.open(tmp_path / name, "w", **prof) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)[: data.shape[0]]
    return tmp_path / name


def _inside(n=2):
    """Labels well inside ``image`` (a 200 m cleared-land square, rows 34–53, and a 100 m pond square)."""
    l, b = GRID.bounds[0], GRID.bounds[1]
    return [(1, box(l + 100, b + 100, l + 300, b + 300)), ("leaching_pond", box(l + 400, b + 400, l + 500, b + 500))][:n]


def _text(tmp_path, text, name="labels.geojson"):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _geojson(tmp_path, features, name="labels.geojson"):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geom.__geo_interface__} for props, geom in features]}
    return _text(tmp_path, json.dumps(doc), name)


def _images_toml(tmp_path, image_path, labels_path, extra: str = "", images: str | None = None):
    body = images if images is not None else (f'[[images]]\npath = "{image_path}"\nlabels = "{labels_path}"\n{extra}')
    cfg = tmp_path / "t.toml"
    cfg.write_text('output = "out/m.pt"\ninit = "none"\n' + body + TRAIN)
    return cfg


def _refused(r, code: int, *needles: str) -> str:
    assert r.exit_code == code, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def _nocrs_gpkg(tmp_path):
    gpd.GeoDataFrame({"class": [1]}, geometry=[_inside(1)[0][1]]).to_file(tmp_path / "nocrs.gpkg", driver="GPKG")
    return tmp_path / "nocrs.gpkg"


# case -> (builder(tmp_path, image) -> (image path, labels path, extra TOML lines), exit code, words, stage);
# stage "load": refused by load_job (job_data never runs); "data": refused while loading, before train() runs.
BAD_IMAGES = {
    # 80–81 missing files (refused at config load)
    "image-missing": (lambda t, im: ("nowhere.tif", _labels(t, _inside()), ""), 2,
                      ["images[0].path", "nowhere.tif", "does not exist", "GeoTIFF"], "load"),
    "labels-missing": (lambda t, im: (im[0], "nowhere.geojson", ""), 2,
                       ["images[0].labels", "nowhere.geojson", "does not exist", "GeoJSON/GPKG"], "load"),
    "labels-folder": (lambda t, im: (im[0], t, ""), 2, ["images[0].labels", "is a folder, not a file"], "load"),
    # 82 wrong values (at config load)
    "offset-not-a-number": (lambda t, im: (im[0], _labels(t, _inside()), 'offset = "abc"\n'), 2,
                            ["images[0].offset must be a number, got 'abc'"], "load"),
    "point-radius-zero": (lambda t, im: (im[0], _labels(t, _inside()), "point_radius_m = 0\n"), 2,
                          ["images[0].point_radius_m must be > 0"], "load"),
    "path-not-a-string": (lambda t, im: (im[0], _labels(t, _inside()), None), 2,
                          ["images[0].path must be a non-empty string, got 5"], "load"),
    "images-not-an-array": (lambda t, im: (im[0], _labels(t, _inside()), "[images]"), 2,
                            ["images must be an array of tables ([[images]])"], "load"),
    # 83 labels wholly outside the image (84, partly outside: test_labels_partly_outside_train_on_the_overlap)
    "labels-outside-image": (lambda t, im: (im[0], _labels(t, [(1, box(421000, 2829360, 422000, 2830360))]), ""), 2,
                             ["images[0]: no label in", "labels.geojson", "lies inside the image", "scene.tif",
                              "x 431000–431640, y 2839360–2840000 in EPSG:32647",
                              "the labels span x 421000–422000, y 2829360–2830360", "check the labels' CRS"], "data"),
    # 85–86 unreadable labels file, no features
    "labels-empty-collection": (lambda t, im: (im[0], _text(t, '{"type": "FeatureCollection", "features": []}'), ""),
                                2, ["labels", "hold no features", "draw at least one polygon or point"], "data"),
    "labels-zero-bytes": (lambda t, im: (im[0], _text(t, b""), ""), 4,
                          ["cannot read labels", "GeoJSON/GPKG"], "data"),
    "labels-not-a-vector-file": (lambda t, im: (im[0], im[0], ""), 4,
                                 ["cannot read labels", "scene.tif", "GeoJSON/GPKG"], "data"),
    # 87 CRS of the labels
    "labels-projected-without-crs": (lambda t, im: (im[0], _geojson(t, [({"class": 1}, _inside(1)[0][1])]), ""), 4,
                                     ["outside longitude/latitude range", "look projected", "EPSG:4326"], "data"),
    "labels-gpkg-without-crs": (lambda t, im: (im[0], _nocrs_gpkg(t), ""), 4, ["have no CRS", "set one"], "data"),
    # 88 classes
    "class-missing": (lambda t, im: (im[0], _geojson(t, [({"kind": 1}, Point(98.3, 25.66))]), ""), 4,
                      ["no 'class' value", "cleared_land", "leaching_pond"], "data"),
    "class-unknown-name": (lambda t, im: (im[0], _labels(t, [("volcano", _inside(1)[0][1])]), ""), 4,
                           ["unknown class 'volcano'"], "data"),
    "class-out-of-range": (lambda t, im: (im[0], _labels(t, [(3, _inside(1)[0][1])]), ""), 4,
                           ["class 3", "is not 0, 1 or 2"], "data"),
    "class-not-whole": (lambda t, im: (im[0], _labels(t, [(1.5, _inside(1)[0][1])]), ""), 4,
                        ["class 1.5", "is not 0, 1 or 2"], "data"),
    # 89–93 images
    "image-without-crs": (lambda t, im: (_raster(t, im, crs=None), _labels(t, _inside()), ""), 4,
                          ["img.tif has no CRS", "gdal_edit.py -a_srs"], "data"),
    "image-without-band-descriptions": (lambda t, im: (_raster(t, im, descriptions=None), _labels(t, _inside()), ""),
                                        4, ["band descriptions", "do not all name Sentinel-2 bands", "--description"],
                                        "data"),
    "image-missing-a-band": (lambda t, im: (_raster(t, im, data=im[3][:5]), _labels(t, _inside()), ""), 4,
                             ["lacks band(s) B12"], "data"),
    "image-corrupt": (lambda t, im: (_text(t, b"II*\x00" + b"garbage" * 20, "img.tif"), _labels(t, _inside()), ""),
                      4, ["cannot read raster", "img.tif"], "data"),
    "image-geographic-crs": (lambda t, im: (_raster(t, im, crs=CRS.from_epsg(4326),
                                                    transform=Affine(0.0001, 0, 98.3, 0, -0.0001, 25.7)),
                                            _labels(t, _inside()), ""), 4,
                             ["images[0]: image", "img.tif is in EPSG:4326", "projected 10 m grid", "gdalwarp"],
                             "data"),
    # reflectance scaled twice (DN / 1e8): 0-1 reflectance is read as such (tests/test_geotiff_scaling.py)
    "image-reflectance-scaled-twice": (lambda t, im: (_raster(t, im, data=(im[3] / 1e8).astype("float32")),
                                                      _labels(t, _inside()), ""), 4,
                                       ["images[0]: image", "not hold Sentinel-2 L2A digital numbers", "uint16"],
                                       "data"),
    "image-8-bit": (lambda t, im: (_raster(t, im, data=(im[3] // 40).clip(1, 255).astype("uint8")),
                                   _labels(t, _inside()), ""), 4,
                    ["not hold Sentinel-2 L2A digital numbers"], "data"),
    "image-all-nodata": (lambda t, im: (_raster(t, im, data=np.zeros_like(im[3])), _labels(t, _inside()), ""), 6,
                         ["images[0]: image", "has no valid pixel"], "data"),
    "labels-only-on-nodata": (lambda t, im: (_raster(t, im, data=np.where(np.arange(64)[None, :, None] <= 30, im[3], 0)
                                                     .astype("uint16")), _labels(t, _inside(1)), ""), 6,
                              ["every labelled pixel of", "lies on nodata pixels of", "img.tif"], "data"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_images_config(case, image, tmp_path, monkeypatch):
    import models.train_job as mt

    build, code, needles, stage = BAD_IMAGES[case]
    calls = []
    real_job_data = mt.job_data
    monkeypatch.setattr(mt, "job_data", lambda job: calls.append("job_data") or real_job_data(job))
    monkeypatch.setattr(mt, "train", lambda *a, **kw: pytest.fail("a refused config must not start training"))
    img, lab, extra = build(tmp_path, image)
    if extra is None:
        cfg = _images_toml(tmp_path, img, lab, images=f'[[images]]\npath = 5\nlabels = "{lab}"\n')
    elif extra == "[images]":
        cfg = _images_toml(tmp_path, img, lab, images=f'[images]\npath = "{img}"\nlabels = "{lab}"\n')
    else:
        cfg = _images_toml(tmp_path, img, lab, extra)
    r = CliRunner().invoke(cli, ["-q", "train", "--config", str(cfg)])
    line = _refused(r, code, *needles)
    assert calls == ([] if stage == "load" else ["job_data"]), (stage, calls)
    if stage == "load":
        assert str(cfg) in line, "config errors name the config file"
    assert not (tmp_path / "out").exists(), "nothing written for a refused config"


def test_labels_partly_outside_train_on_the_overlap(image, tmp_path, monkeypatch, caplog):
    """Features outside the image are dropped with a warning; the rest train exactly as rasterize_labels burns them."""
    import logging

    import models.train_job as mt

    seen = []
    real_train = mt.train
    monkeypatch.setattr(mt, "train", lambda samples, *a, **kw: seen.extend(samples) or real_train(samples, *a, **kw))
    outside = [(2, Point(425000, 2835000)), ("cleared_land", box(431500, 2840500, 431700, 2840700))]  # 2nd: just N
    lab = _labels(tmp_path, _inside() + outside)
    for unlabelled, fill in (("background", 0), ("ignore", 255)):
        caplog.clear()
        seen.clear()
        cfg = _images_toml(tmp_path, image[0], lab, f'unlabelled = "{unlabelled}"\n')
        with caplog.at_level(logging.WARNING, logger="models.labels"):
            r = CliRunner().invoke(cli, ["-q", "train", "--config", str(cfg)])
        assert r.exit_code == 0, r.output
        warns = [m for m in caplog.messages if "outside the image" in m]
        assert len(warns) == 1 and "images[0]: 2 of 4 label feature(s)" in warns[0] and "the 2 inside" in warns[0]
        (x, y), = seen
        assert (y == rasterize_labels(lab, image[1], unlabelled=fill)).all() and x.shape == (6, 64, 64)
        assert (y == 1).sum() == 400 and (y == 2).sum() == 100  # 200 m and 100 m squares, fully inside
        assert (tmp_path / "out" / "m.pt").exists()


# [train] / [simulator] / [negatives] values of the wrong type or range: each was a Python traceback (exit 1) or,
# for focus / mine_threshold / class_weights, a silently wrong training (exit 0) before they were checked
BAD_TRAIN_VALUES = {
    'steps = "x"': "steps must be a whole number",
    "steps = 2.5": "steps must be a whole number",
    "widths = 5": "widths must be a list",
    "widths = [0, 4]": "widths must be >= 1",
    "crop = 0": "positive multiple of 16",
    "lr = -1": "lr and class_weights must be > 0",
    "lr = nan": "lr must be a number",
    "class_weights = [1, -2, 3]": "class_weights must be > 0",
    "weight_decay = -1": "weight_decay and seed >= 0",
    "seed = -1": "weight_decay and seed >= 0",
    "unshuffle = 0": "unshuffle >= 1",
    "refine = -2": "refine >= 0",
    "focus = 3": "focus and mine_share must lie in 0-1",
    "mine_threshold = 5": "mine_threshold in (0, 1)",
    "brightness = [2, 1]": "0 < low <= high",
    "brightness = [1]": "brightness must be a list of 2",
    'transform = 3': "transform must be a string",
    "\n[negatives]\nreal = 1": "negatives.real must be true or false",
    "\n[simulator]\nsize = 'big'": "simulator.size must be a whole number",
    "\n[simulator]\nseeds = [5, 2]": "0 <= start < stop",
}


@pytest.mark.parametrize("value", list(BAD_TRAIN_VALUES))
def test_bad_train_values_are_one_line(value, tmp_path, monkeypatch):
    import models.train_job as mt

    monkeypatch.setattr(mt, "train", lambda *a, **kw: pytest.fail("a refused config must not start training"))
    cfg = tmp_path / "t.toml"
    steps = "" if value.startswith("steps") else "steps = 1\n"
    cfg.write_text(f'output = "out/m.pt"\n[train]\n{steps}{value}\n')
    line = _refused(CliRunner().invoke(cli, ["-q", "train", "--config", str(cfg)]), 2, BAD_TRAIN_VALUES[value])
    assert str(cfg) in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("doc", ["train = 4", "simulator = 4", "negatives = 3", "output = 5"])
def test_tables_of_the_wrong_kind_are_one_line(doc, tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text(doc + "\n")
    _refused(CliRunner().invoke(cli, ["-q", "train", "--config", str(cfg)]), 2, doc.split(" ")[0] + " must be")

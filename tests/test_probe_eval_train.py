"""Bad inputs of `minewatch evaluate` and `minewatch train` found by probing (probe B): outputs over inputs, images
with nothing to score, malformed model cards, a crop larger than the images, `evaluate --csv` in image mode, NaN in
`--json`, and label files (point radius, labels partly outside, multi-layer GeoPackages, empty geometries, points
in a GeometryCollection). Each refusal is one `Error:` line with its documented exit code and touches no input;
tiny rasters and models keep it fast."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import GeometryCollection, MultiPoint, Point, box

from geo.bands import ANALYSIS_BANDS
from geo.cli.main import cli

CRS = "EPSG:32647"
X0, Y0 = 431000, 2840000
LABEL_BOX = box(X0 + 100, Y0 - 300, X0 + 200, Y0 - 200)  # 10 x 10 px inside a 64 px image
TRAIN = '[train]\nsteps = 1\nbatch_size = 1\ncrop = 32\nwidths = [8, 12, 16]\nthreads = 1\n'


def _image(path: Path, data: np.ndarray | None = None, size: int = 64, dtype: str = "uint16") -> Path:
    if data is None:
        data = np.random.default_rng(0).uniform(300, 3000, (6, size, size))
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=6, dtype=dtype,
                       crs=CRS, transform=Affine(10, 0, X0, 0, -10, Y0)) as dst:
        dst.write(data.astype(dtype))
        for i, b in enumerate(ANALYSIS_BANDS):
            dst.set_band_description(i + 1, b)
    return path


def _labels(path: Path, geoms=(LABEL_BOX,), classes=None, driver: str = "GeoJSON") -> Path:
    gpd.GeoDataFrame({"class": list(classes or [1] * len(geoms))}, geometry=list(geoms), crs=CRS).to_file(
        path, driver=driver)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run(args) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["-q", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr


def _one_line(result, code: int, *needles: str) -> str:
    got, _, err = result
    assert got == code, (got, err)
    assert "Traceback" not in err and "Warning" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if evaluate scores anything or train trains."""
    import models.evaluate as me
    import models.point_eval as mp
    import models.train_job as mt

    monkeypatch.setattr(me, "evaluate_samples", lambda *a, **k: pytest.fail("scored although refused"))
    monkeypatch.setattr(mp, "evaluate_points", lambda *a, **k: pytest.fail("scored although refused"))
    monkeypatch.setattr(mt, "train", lambda *a, **k: pytest.fail("trained although refused"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from models.infer import ModelCard, save_model
    from models.unet import UNet, UNetConfig

    cfg = UNetConfig(widths=(8, 12), unshuffle=1)
    card = ModelCard("probe", "0", ANALYSIS_BANDS, (0.1,) * 6, (0.05,) * 6,
                     {0: "background", 1: "cleared_land", 2: "leaching_pond"}, cfg.to_dict())
    path = tmp_path_factory.mktemp("weights") / "unet.pt"
    save_model(UNet(cfg), card, path)
    return path


# -- 1. evaluate: an output on an input ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["json=image", "json=labels", "csv=labels", "csv=json", "json=weights-card",
                                  "points json=stac", "points csv=pools"])
def test_evaluate_refuses_an_output_on_an_input(case, tmp_path, no_work, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    img, lab = _image(tmp_path / "img.tif"), _labels(tmp_path / "lab.geojson")
    items, pools = tmp_path / "items.json", tmp_path / "pools.csv"
    items.write_text('{"type": "FeatureCollection", "features": []}')
    pools.write_text("lon,lat\n97.8,25.6\n")
    image_mode = ["evaluate", "--image", img, "--labels", lab, "--method", "rules"]
    point_mode = ["evaluate", "--stac", "items.json", "--datetime", "2023-11-01/2024-04-30", "--pools", pools]
    args, victim, says = {
        "json=image": (image_mode + ["--json", "./img.tif"], img, "--json ./img.tif would overwrite its input --image"),
        "json=labels": (image_mode + ["--json", lab], lab, "would overwrite its input --labels"),
        "csv=labels": (image_mode + ["--csv", lab], lab, "would overwrite its input --labels"),
        "csv=json": (image_mode + ["--json", tmp_path / "r.json", "--csv", tmp_path / "r.json"], None,
                     "--csv"),
        "json=weights-card": (["evaluate", "--sim-seeds", "1:2", "--method", "model", "--weights", weights,
                               "--json", weights.with_suffix(".json")], weights.with_suffix(".json"),
                              "would overwrite its input --weights' card"),
        "points json=stac": (point_mode + ["--json", items], items, "would overwrite its input --stac"),
        "points csv=pools": (point_mode + ["--csv", pools], pools, "would overwrite its input --pools"),
    }[case]
    before = _digest(victim) if victim else None
    _one_line(_run(args), 2, says, "give each output its own path")
    if victim:
        assert _digest(victim) == before
    else:
        assert not (tmp_path / "r.json").exists()


# -- 2. train: an output on an input, or on its own card -----------------------------------------------------------

@pytest.mark.parametrize("case", ["image", "labels", "json", "card=labels", "init", "config"])
def test_train_refuses_an_output_on_an_input(case, tmp_path, no_work, weights):
    _image(tmp_path / "img.tif")
    _labels(tmp_path / "lab.geojson")
    (tmp_path / "m.json").write_text("{}")
    output, code, says, victim = {
        "image": ("img.tif", 2, "output", tmp_path / "img.tif"),
        "labels": ("lab.geojson", 2, "would overwrite its input images[0].labels", tmp_path / "lab.geojson"),
        "json": ("m.json", 2, "ends in .json", tmp_path / "m.json"),
        "card=labels": ("lab.pt", 2, "output's card", tmp_path / "lab.geojson"),  # its card would be lab.json
        "init": (str(weights), 2, "would overwrite its input init", weights),
        "config": ("t.toml", 2, "would overwrite its input --config", tmp_path / "t.toml"),
    }[case]
    if case == "card=labels":
        _labels(tmp_path / "lab.json")
        toml = f'output = "{output}"\n[[images]]\npath = "img.tif"\nlabels = "lab.json"\n'
        victim = tmp_path / "lab.json"
    else:
        toml = f'output = "{output}"\n[[images]]\npath = "img.tif"\nlabels = "lab.geojson"\n'
    if case == "init":
        toml = f'init = "{weights}"\n' + toml
    (tmp_path / "t.toml").write_text(toml + TRAIN)
    before = _digest(victim)
    line = _one_line(_run(["train", "--config", tmp_path / "t.toml"]), code, says)
    assert _digest(victim) == before, line


# -- 3. evaluate: an image with nothing to score -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zeros", "nan", "8-bit"])
def test_evaluate_refuses_an_image_with_nothing_to_score(kind, tmp_path, no_work):
    lab = _labels(tmp_path / "lab.geojson")
    if kind == "zeros":
        img, code, says = _image(tmp_path / "z.tif", np.zeros((6, 64, 64))), 6, "has no valid pixel"
    elif kind == "nan":
        img, code, says = (_image(tmp_path / "n.tif", np.full((6, 64, 64), np.nan), dtype="float32"), 6,
                           "has no valid pixel")
    else:  # DN / 40 stored as 0-255: reflectance at most 0.0255
        img, code, says = _image(tmp_path / "u8.tif", np.random.default_rng(1).uniform(5, 250, (6, 64, 64))), 4, \
            "does not hold Sentinel-2 L2A digital numbers"
    _one_line(_run(["evaluate", "--image", img, "--labels", lab, "--method", "rules"]), code, says, str(img))


# -- 4. model cards that load and then detect nothing, or crash ----------------------------------------------------

CARD_CASES = {
    "widths empty": (lambda c: c["architecture"].update(widths=[]), "widths must list at least one"),
    "classes list": (lambda c: c.update(classes=["background", "cleared_land", "leaching_pond"]), "malformed"),
    "std zero": (lambda c: c["normalization"].update(std=[0.0] * 6), "a finite number > 0"),
    "std negative": (lambda c: c["normalization"].update(std=[-0.05] * 6), "a finite number > 0"),
    "mean nan": (lambda c: c["normalization"].update(mean=[float("nan")] * 6), "finite"),
    "4 classes": (lambda c: c["classes"].update({"3": "road"}), "classes are"),
    "classes swapped": (lambda c: c.update(classes={"0": "background", "1": "leaching_pond", "2": "cleared_land"}),
                        "classes are"),
    "n_classes 4": (lambda c: c["architecture"].update(n_classes=4), "n_classes 4"),
    "unshuffle 0": (lambda c: c["architecture"].update(unshuffle=0), "unshuffle must be >= 1"),
}


@pytest.mark.parametrize("case", list(CARD_CASES))
def test_a_malformed_model_card_is_refused(case, tmp_path, weights):
    w = tmp_path / "w.pt"
    w.write_bytes(weights.read_bytes())
    card = json.loads(weights.with_suffix(".json").read_text())
    CARD_CASES[case][0](card)
    w.with_suffix(".json").write_text(json.dumps(card))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _run(["evaluate", "--sim-seeds", "1:2", "--sim-size", "32", "--method", "model", "--weights", w,
                    "--device", "cpu"])
    _one_line(res, 5, "model card", CARD_CASES[case][1])
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]


def test_unet_config_refuses_what_no_network_can_be_built_from():
    from models.unet import UNetConfig

    for bad in ({"widths": ()}, {"unshuffle": 0}, {"n_classes": 0}, {"refine": -1}, {"widths": (8, 0)}):
        with pytest.raises(ValueError):
            UNetConfig(**bad)


# -- 5. train: a crop larger than the images -----------------------------------------------------------------------

def test_train_refuses_a_crop_larger_than_the_smallest_image(tmp_path, no_work):
    _image(tmp_path / "img.tif", size=64)
    _labels(tmp_path / "lab.geojson")
    (tmp_path / "t.toml").write_text('output = "m.pt"\n[[images]]\npath = "img.tif"\nlabels = "lab.geojson"\n'
                                     + TRAIN.replace("crop = 32", "crop = 4096"))
    _one_line(_run(["train", "--config", tmp_path / "t.toml"]), 2, "crop 4096 px is larger than the smallest "
              "training image (64 x 64 px)", "at most 64")
    assert not (tmp_path / "m.pt").exists()


# -- 6 and 7. evaluate --csv in image mode, --json with undefined metrics as null ----------------------------------

def test_evaluate_image_writes_csv_and_strict_json(tmp_path):
    img = _image(tmp_path / "flat.tif", np.full((6, 64, 64), 3000.0))  # flat: the rules find no footprint
    lab = _labels(tmp_path / "lab.geojson")  # cleared land only: no pond in truth or prediction
    code, out, err = _run(["evaluate", "--image", img, "--labels", lab, "--method", "rules",
                           "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv"])
    assert code == 0, err

    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    rep = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    pond = rep["classes"]["leaching_pond"]
    assert pond["support"] == 0 and pond["iou"] is None and pond["precision"] is None
    json.dumps(rep, allow_nan=False)
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0] == "class,iou,f1,precision,recall,support"
    assert [r.split(",")[0] for r in rows[1:]] == ["background", "cleared_land", "leaching_pond"]
    for row in rows[1:]:
        name, *vals = row.split(",")
        c = rep["classes"][name]
        for k, v in zip(("iou", "f1", "precision", "recall", "support"), vals):
            assert (v == "" and c[k] is None) or math.isclose(float(v), c[k]), (name, k, v, c[k])
    assert rep["classes"]["cleared_land"]["support"] == 100  # the 10 x 10 px box


# -- 8. label messages ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("radius", ["0", "-5"])
def test_evaluate_refuses_a_point_radius_that_is_not_positive(radius, tmp_path, no_work):
    img, lab = _image(tmp_path / "img.tif"), _labels(tmp_path / "p.geojson", [Point(X0 + 150, Y0 - 250)])
    _one_line(_run(["evaluate", "--image", img, "--labels", lab, "--method", "rules", "--point-radius-m", radius]), 2,
              "--point-radius-m must be > 0")


def test_evaluate_says_scoring_for_labels_partly_outside(tmp_path, caplog):
    img = _image(tmp_path / "img.tif")
    lab = _labels(tmp_path / "lab.geojson", [LABEL_BOX, box(X0 - 500, Y0 - 300, X0 - 400, Y0 - 200)])
    code, _, err = _run(["evaluate", "--image", img, "--labels", lab, "--method", "rules"])
    assert code == 0, err
    said = [r.getMessage() for r in caplog.records if "lie outside" in r.getMessage()]
    assert said and "scoring the 1 inside" in said[0] and "training" not in said[0], said


def test_a_multi_layer_geopackage_is_refused_with_its_layers(tmp_path, no_work):
    img, gpkg = _image(tmp_path / "img.tif"), tmp_path / "multi.gpkg"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[LABEL_BOX], crs=CRS).to_file(gpkg, layer="aaa_other", driver="GPKG")
    gpd.GeoDataFrame({"class": [1]}, geometry=[LABEL_BOX], crs=CRS).to_file(gpkg, layer="labels", driver="GPKG")
    line = _one_line(_run(["evaluate", "--image", img, "--labels", gpkg, "--method", "rules"]), 4,
                     "holds 2 layers (aaa_other, labels)", f"{gpkg}|layername=labels")
    assert "'class'" not in line


def _two_layers(gpkg: Path) -> Path:
    """A GeoPackage whose first layer is not the labels (it has no class) and whose second is: 10 x 10 px."""
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[box(X0, Y0 - 100, X0 + 100, Y0)], crs=CRS).to_file(
        gpkg, layer="aaa_other", driver="GPKG")
    gpd.GeoDataFrame({"class": [1]}, geometry=[LABEL_BOX], crs=CRS).to_file(gpkg, layer="labels", driver="GPKG")
    return gpkg


def test_a_layer_of_a_multi_layer_geopackage_is_read_when_named_as_qgis_does(tmp_path):
    """``file.gpkg|layername=labels`` (QGIS's data-source syntax) reads that layer: the same report as the layer
    written to its own file."""
    img, gpkg = _image(tmp_path / "img.tif"), _two_layers(tmp_path / "multi.gpkg")
    alone = _labels(tmp_path / "alone.geojson", [LABEL_BOX], classes=[1])
    reports = []
    for lab in (f"{gpkg}|layername=labels", alone):
        code, _, err = _run(["evaluate", "--image", img, "--labels", lab, "--method", "rules", "--json",
                             tmp_path / f"r{len(reports)}.json"])
        assert code == 0, err
        reports.append(json.loads((tmp_path / f"r{len(reports)}.json").read_text())["classes"])
    assert reports[0] == reports[1] and reports[0]["cleared_land"]["support"] == 100


@pytest.mark.parametrize("suffix, code, needles", [
    ("|layername=nope", 4, ("has no layer 'nope'", "its layers: aaa_other, labels")),
    ("|layername=", 2, ("names no layer after '|layername='",)),
])
def test_a_bad_layer_name_is_one_line(suffix, code, needles, tmp_path, no_work):
    img, gpkg = _image(tmp_path / "img.tif"), _two_layers(tmp_path / "multi.gpkg")
    _one_line(_run(["evaluate", "--image", img, "--labels", f"{gpkg}{suffix}", "--method", "rules"]), code, *needles)


def test_a_named_layer_of_a_missing_file_is_refused_by_the_option(tmp_path, no_work):
    img = _image(tmp_path / "img.tif")
    code, out, err = _run(["evaluate", "--image", img, "--labels", f"{tmp_path / 'gone.gpkg'}|layername=labels"])
    assert code == 2 and "gone.gpkg" in out + err and "does not exist" in out + err and "Traceback" not in out + err


def test_training_reads_a_named_layer_and_keeps_it_apart_from_the_output(tmp_path):
    """The train job's labels path keeps its layer; the output check compares the file, so a weights path equal
    to the GeoPackage is still refused."""
    from models.train_job import check_output, job_inputs, load_job
    from geo.errors import UsageError

    img, gpkg = _image(tmp_path / "img.tif"), _two_layers(tmp_path / "multi.gpkg")
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'output = "w.pt"\n[[images]]\npath = "{img}"\nlabels = "{gpkg}|layername=labels"\n')
    job = load_job(cfg)
    assert str(job.images[0].labels).endswith("multi.gpkg|layername=labels")
    assert job_inputs(job)["images[0].labels"] == gpkg
    with pytest.raises(UsageError, match="would overwrite its input images\\[0\\].labels"):
        check_output(gpkg, inputs=job_inputs(job))


def test_empty_label_geometries_are_skipped_without_a_warning(tmp_path):
    from shapely.geometry import Polygon

    img = _image(tmp_path / "img.tif")
    lab = _labels(tmp_path / "lab.geojson", [LABEL_BOX, Polygon()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _run(["evaluate", "--image", img, "--labels", lab, "--method", "rules", "--json",
                             tmp_path / "r.json"])
    assert code == 0 and "Warning" not in err, err
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]
    assert json.loads((tmp_path / "r.json").read_text())["classes"]["cleared_land"]["support"] == 100


# -- 9. points inside a GeometryCollection are discs ---------------------------------------------------------------

def test_points_in_a_geometry_collection_are_buffered(tmp_path):
    from geo.grid import GeoGrid
    from models.data import rasterize_labels
    from models.labels import burn_labels

    grid = GeoGrid(rasterio.crs.CRS.from_string(CRS), Affine(10, 0, X0, 0, -10, Y0), 64, 64)
    pts = [Point(X0 + 155, Y0 - 155), Point(X0 + 405, Y0 - 405)]
    multi = _labels(tmp_path / "multi.geojson", [MultiPoint(pts)])
    coll = _labels(tmp_path / "coll.geojson", [GeometryCollection(pts)])
    mixed = _labels(tmp_path / "mixed.geojson", [GeometryCollection([pts[0], LABEL_BOX.buffer(0)])])
    want = rasterize_labels(multi, grid, point_radius_m=20)
    assert (want == 1).sum() > 2 * 9  # two discs of radius 2 px, not two pixels
    np.testing.assert_array_equal(rasterize_labels(coll, grid, point_radius_m=20), want)
    kw = dict(where="t", area_desc="the image", fix="f", point_radius_m=20)
    np.testing.assert_array_equal(burn_labels(coll, grid, **kw), burn_labels(multi, grid, **kw))
    box_only = rasterize_labels(_labels(tmp_path / "box.geojson"), grid)
    disc = rasterize_labels(_labels(tmp_path / "one.geojson", [pts[0]]), grid, point_radius_m=20)
    np.testing.assert_array_equal(rasterize_labels(mixed, grid, point_radius_m=20) == 1, (box_only == 1) | (disc == 1))


def test_a_geopackage_with_one_layer_of_geometries_and_a_style_table_is_read(tmp_path):
    """A QGIS-saved (or minewatch-written) GeoPackage holds a ``layer_styles`` table beside its layer: not refused,
    and read without pyogrio's "more than one layer" warning."""
    import pandas as pd
    import pyogrio

    img, gpkg = _image(tmp_path / "img.tif"), tmp_path / "styled.gpkg"
    _labels(gpkg, driver="GPKG")
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["s"]}), gpkg, layer="layer_styles", driver="GPKG")
    assert len(pyogrio.list_layers(gpkg)) == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _run(["evaluate", "--image", img, "--labels", gpkg, "--method", "rules", "--json",
                             tmp_path / "r.json"])
    assert code == 0, err
    assert not [w for w in caught if "layer" in str(w.message)], [str(w.message) for w in caught]
    assert json.loads((tmp_path / "r.json").read_text())["classes"]["cleared_land"]["support"] == 100


def test_point_mode_refuses_a_negative_radius(tmp_path, no_work):
    (tmp_path / "pools.csv").write_text("lon,lat\n97.8,25.6\n")
    _one_line(_run(["evaluate", "--stac", "earth-search", "--datetime", "2023-11-01/2024-04-30", "--pools",
                    tmp_path / "pools.csv", "--point-radius-m", "-1"]), 2, "--point-radius-m must be >= 0")

"""A local GeoTIFF is read as reflectance whichever way its values are stored: L2A DN (reflectance x 10000),
floating-point reflectance 0-1 (as many composites are exported), or values with GDAL scale/offset metadata."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geo.bands import ANALYSIS_BANDS
from geo.cli.main import cli
from geo.sources.geotiff import read_geotiff


@pytest.fixture(scope="module")
def scene():
    from models.data import simulator_scene

    return simulator_scene(777002, 128)[0]


def _write(path, arr, dtype, scene, *, scales=None, offsets=None, names=ANALYSIS_BANDS):
    prof = dict(driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=dtype,
                crs=scene.grid.crs, transform=scene.grid.transform, nodata=0)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr.astype(dtype))
        for i, b in enumerate(names):
            dst.set_band_description(i + 1, b)
        if scales is not None:
            dst.scales = scales
            dst.offsets = offsets
    return path


def test_dn_float_reflectance_and_scaled_bands_read_alike(scene, tmp_path, caplog):
    dn = np.round(scene.data * 10000).clip(1, 65535)
    ref = dn / 10000
    paths = {
        "dn": _write(tmp_path / "dn.tif", dn, "uint16", scene),
        "float": _write(tmp_path / "float.tif", ref, "float32", scene),
        # an L2A baseline >= 04.00 product re-exported with its own metadata: DN + 1000, scale 1e-4, offset -0.1
        "scaled": _write(tmp_path / "scaled.tif", dn + 1000, "uint16", scene, scales=[1e-4] * 6, offsets=[-0.1] * 6),
        "float_dn": _write(tmp_path / "float_dn.tif", dn, "float32", scene),  # DN held as floats stay DN
        # a Google Earth Engine export: its band names have no zero (B2 ... B8, B11, B12), values scaled to 0-1
        "gee": _write(tmp_path / "gee.tif", ref, "float32", scene, names=("B2", "B3", "B4", "B8", "B11", "B12")),
    }
    with caplog.at_level("INFO", logger="geo.sources.geotiff"):
        got = {k: read_geotiff(p).data for k, p in paths.items()}
    for k in ("float", "scaled", "float_dn", "gee"):
        np.testing.assert_allclose(got[k], got["dn"], atol=2e-6, err_msg=k)
    assert "read as reflectance 0-1" in caplog.text and "scale/offset metadata" in caplog.text


def test_detect_on_a_float_reflectance_composite_finds_what_it_finds_on_dn(scene, tmp_path):
    """Before, a float reflectance file was divided by 10,000: nothing detected, exit 0."""
    dn = np.round(scene.data * 10000).clip(1, 65535)
    out = {}
    for name, arr, dtype in (("dn", dn, "uint16"), ("float", dn / 10000, "float32")):
        path = _write(tmp_path / f"{name}.tif", arr, dtype, scene)
        r = CliRunner().invoke(cli, ["detect", str(path), "--out", str(tmp_path / f"{name}.geojson"),
                                     "--raster", str(tmp_path / f"{name}_cls.tif"), "--device", "cpu"])
        assert r.exit_code == 0, r.output
        with rasterio.open(tmp_path / f"{name}_cls.tif") as src:
            out[name] = src.read(1)
    assert (out["dn"] > 0).sum() > 50  # the scene has mining to find
    np.testing.assert_array_equal(out["float"], out["dn"])


def test_a_float_reflectance_training_image_gives_the_dn_image_sample(scene, tmp_path):
    """Training (``[[images]]``) reads a 0-1 reflectance export as the DN file it was made from."""
    from geo.stages.vectorize import polygonize
    from models.data import simulator_scene
    from models.labels import image_sample

    _, truth = simulator_scene(777002, 128)
    polygonize(truth, scene.grid).to_file(tmp_path / "labels.gpkg", driver="GPKG")
    dn = np.round(scene.data * 10000).clip(1, 65535)
    a = image_sample(_write(tmp_path / "dn.tif", dn, "uint16", scene), tmp_path / "labels.gpkg", where="t")
    b = image_sample(_write(tmp_path / "f.tif", dn / 10000, "float32", scene), tmp_path / "labels.gpkg", where="t")
    np.testing.assert_allclose(b[0], a[0], atol=2e-6)
    np.testing.assert_array_equal(b[1], a[1])
    assert (a[1] > 0).any()


def test_detect_warns_when_the_pixels_are_not_10_m(scene, tmp_path, caplog):
    """A 20 m composite is classified (exit 0) with a warning that the detector is made for 10 m pixels; resampling
    it to 10 m was measured and did not help (ponds got worse), so nothing is resampled."""
    from affine import Affine

    from geo.grid import GeoGrid
    from geo.sources.geotiff import Scene

    dn = np.round(scene.data * 10000).clip(1, 65535)
    t = scene.grid.transform
    coarse = Scene(scene.data, scene.bands, GeoGrid(scene.grid.crs, Affine(20, 0, t.c, 0, -20, t.f), 128, 128))
    with caplog.at_level("WARNING", logger="geo.cli.detect"):
        for name, sc in (("fine", scene), ("coarse", coarse)):
            r = CliRunner().invoke(cli, ["detect", str(_write(tmp_path / f"{name}.tif", dn, "uint16", sc)), "--out",
                                         str(tmp_path / f"{name}.geojson"), "--method", "rules"])
            assert r.exit_code == 0, r.output
            assert ("20 x 20 m pixels" in caplog.text) == (name == "coarse"), caplog.text


def test_dn_with_the_baseline_offset_still_in_is_named(scene, tmp_path, caplog):
    """DN of processing baseline >= 04.00 still carry +1000: the log names the fix (--offset -1000); plain DN and an
    explicit offset say nothing."""
    dn = np.round(scene.data * 10000).clip(1, 55000)
    plain = _write(tmp_path / "plain.tif", dn, "uint16", scene)
    shifted = _write(tmp_path / "shifted.tif", dn + 1000, "uint16", scene)
    for path, offset, named in ((plain, None, False), (shifted, None, True), (shifted, -1000.0, False)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="geo.sources.geotiff"):
            data = read_geotiff(path, offset=offset).data
        assert ("--offset -1000" in caplog.text) == named, (path, offset, caplog.text)
    np.testing.assert_allclose(data, read_geotiff(plain).data, atol=1e-6)


def test_detect_bands_names_a_stack_without_descriptions(scene, tmp_path):
    """A stack merged without band descriptions is refused with the fix (--bands); named with --bands it gives the
    described file's classes; a wrong --bands is one line, exit 2."""
    dn = np.round(scene.data * 10000).clip(1, 65535)
    named = _write(tmp_path / "named.tif", dn, "uint16", scene)
    bare = tmp_path / "bare.tif"
    with rasterio.open(named) as src:
        prof = src.profile
        arr = src.read()
    with rasterio.open(bare, "w", **prof) as dst:
        dst.write(arr)
    runs = {}
    for name, path, extra in (("named", named, []), ("bare", bare, []),
                              ("bare_named", bare, ["--bands", "B2,B03,B04,B08,B11,B12"]),
                              ("too_few", bare, ["--bands", "B02,B03"]),
                              ("unknown", bare, ["--bands", "B02,B03,B04,B08,B11,X12"]),
                              ("empty_item", bare, ["--bands", "B02,,B04,B08,B11,B12"])):
        runs[name] = CliRunner().invoke(cli, ["detect", str(path), "--out", str(tmp_path / f"{name}.geojson"),
                                              "--raster", str(tmp_path / f"{name}.tif.out"), "--method", "rules",
                                              *extra])
    assert runs["bare"].exit_code == 4 and "--bands B02,B03,B04,B08,B11,B12" in runs["bare"].output
    assert runs["named"].exit_code == 0 and runs["bare_named"].exit_code == 0, runs["bare_named"].output
    with rasterio.open(tmp_path / "named.tif.out") as a, rasterio.open(tmp_path / "bare_named.tif.out") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    for k, needle in (("too_few", "has 6 band(s) but 2 name(s)"), ("unknown", "'X12' is not a Sentinel-2 band"),
                      ("empty_item", "--bands must list band names")):
        assert runs[k].exit_code == 2 and needle in runs[k].output, (k, runs[k].output)


def test_detect_refuses_to_write_over_its_input_image(scene, tmp_path):
    """``--raster`` naming the input image (or a link to it) overwrote the user's image; now exit 2, untouched."""
    import os

    dn = np.round(scene.data * 10000).clip(1, 65535)
    image = _write(tmp_path / "scene.tif", dn, "uint16", scene)
    before = image.read_bytes()
    os.link(image, tmp_path / "hard.tif")
    for target in (image, tmp_path / "." / "scene.tif", tmp_path / "hard.tif"):
        r = CliRunner().invoke(cli, ["detect", str(image), "--out", str(tmp_path / "fp.geojson"), "--raster",
                                     str(target), "--method", "rules"])
        assert r.exit_code == 2 and "is the input image" in r.output, r.output
    assert image.read_bytes() == before and not (tmp_path / "fp.geojson").exists()


def test_detect_on_an_image_without_georeferencing_is_one_line(tmp_path):
    """A GeoTIFF without CRS or transform: rasterio's NotGeoreferencedWarning used to print two lines of library
    warning above the error. Run as a user runs it (a subprocess: pytest would swallow the warning)."""
    import subprocess
    import sys

    data = np.random.default_rng(0).uniform(300, 3000, (6, 16, 16)).astype("uint16")
    with rasterio.open(tmp_path / "nocrs.tif", "w", driver="GTiff", width=16, height=16, count=6,
                       dtype="uint16") as dst:
        dst.write(data)
    res = subprocess.run([sys.executable, "-m", "geo", "detect", str(tmp_path / "nocrs.tif"), "--method", "rules",
                          "--out", str(tmp_path / "x.gpkg")], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**__import__("os").environ, "PYTHONWARNINGS": "default"})
    assert res.returncode == 4, res.stderr
    assert res.stderr.strip().splitlines() == [f"Error: {tmp_path / 'nocrs.tif'} has no CRS; minewatch never assumes "
                                               "one — assign it with gdal_edit.py -a_srs"], res.stderr

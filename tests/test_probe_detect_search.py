"""Inputs an outside tester found that `detect` and `search` took wrongly (exit 0 with nothing found, a traceback,
or one output silently replacing another); each is now read right or refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from geo.bands import ANALYSIS_BANDS
from geo.cli.main import cli
from geo.errors import ConfigError, RasterError
from geo.sources.geotiff import read_geotiff


@pytest.fixture(scope="module")
def scene():
    from models.data import simulator_scene

    return simulator_scene(777002, 96)[0]


def _write(path, arr, dtype, scene, *, crs=None, transform=None, scales=None, tags=None):
    prof = dict(driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=dtype,
                crs=crs or scene.grid.crs, transform=transform or scene.grid.transform, nodata=0)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr.astype(dtype))
        for i, b in enumerate(ANALYSIS_BANDS):
            dst.set_band_description(i + 1, b)
        if scales is not None:
            dst.scales = scales
        if tags:
            dst.update_tags(**tags)
    return path


def _dn(scene):
    return np.round(np.nan_to_num(scene.data, nan=0) * 10000).clip(1, 65535)


def _detect(*args):
    res = CliRunner().invoke(cli, ["detect", *map(str, args)])
    assert "Traceback" not in res.output, res.output
    return res


def test_inf_pixels_do_not_turn_a_reflectance_file_into_dn(scene, tmp_path):
    """A few +inf pixels made the 99.9th percentile NaN; the file was then divided by 10,000 and 0 found, exit 0."""
    ref = _dn(scene) / 10000
    ref[:, :3] = np.inf
    got = read_geotiff(_write(tmp_path / "inf.tif", ref, "float32", scene)).data
    assert np.isnan(got[:, :3]).all()
    np.testing.assert_allclose(got[:, 3:], ref[:, 3:], rtol=1e-6)


@pytest.mark.parametrize("transform, says", [
    (lambda t: Affine(-t.a, 0, t.c + t.a * 96, 0, t.e, t.f), "mirrored"),  # columns reversed: found 0 footprints
    (lambda t: t @ Affine.rotation(30), "rotated"),                        # cleared land halved
])
def test_a_grid_that_is_not_north_up_is_refused(scene, tmp_path, transform, says):
    path = _write(tmp_path / "x.tif", _dn(scene), "uint16", scene, transform=transform(scene.grid.transform))
    res = _detect(path, "--out", tmp_path / "o.gpkg", "--method", "rules")
    assert res.exit_code == 4 and says in res.output and "gdalwarp" in res.output
    assert not (tmp_path / "o.gpkg").exists()


def test_a_crs_in_feet_is_refused(scene, tmp_path):
    t = scene.grid.transform
    path = _write(tmp_path / "ft.tif", _dn(scene), "uint16", scene, crs=CRS.from_epsg(2283),
                  transform=Affine(32.8, 0, 11_000_000, 0, -32.8, 7_000_000))
    with pytest.raises(RasterError, match="unit is the US survey foot"):
        read_geotiff(path)
    assert t.a == 10


def test_partial_scale_metadata_and_a_bad_offset_tag_are_refused(scene, tmp_path):
    part = _write(tmp_path / "part.tif", _dn(scene), "uint16", scene, scales=[1e-4] * 3 + [1] * 3)
    with pytest.raises(RasterError, match="B02, B03, B04 carry GDAL scale/offset metadata and B08, B11, B12 do not"):
        read_geotiff(part)
    bad = _write(tmp_path / "tag.tif", _dn(scene), "uint16", scene, tags={"offset": "abc"})
    with pytest.raises(RasterError, match="'offset' tag 'abc' is not a number"):
        read_geotiff(bad)
    with pytest.raises(ConfigError, match="--offset nan is not a number"):
        read_geotiff(_write(tmp_path / "ok.tif", _dn(scene), "uint16", scene), offset=float("nan"))


def test_an_8_bit_export_is_refused_not_reported_empty(scene, tmp_path):
    """Before, `detect --method rules` wrote 0 polygons and exited 0 without a word."""
    eight = np.clip(_dn(scene) / 40, 1, 255)
    res = _detect(_write(tmp_path / "u8.tif", eight, "uint8", scene), "--out", tmp_path / "o.gpkg", "--method", "rules")
    assert res.exit_code == 4 and "8-bit export" in res.output


def test_two_outputs_on_one_path_are_refused(scene, tmp_path):
    img = _write(tmp_path / "img.tif", _dn(scene), "uint16", scene)
    res = _detect(img, "--out", tmp_path / "x.gpkg", "--raster", tmp_path / "x.gpkg")  # the footprints were lost
    assert res.exit_code == 2 and "--raster writes a GeoTIFF" in res.output
    res = _detect(img, "--out", tmp_path / "x.gpkg", "--raster", tmp_path / "x.png")
    assert res.exit_code == 2 and "GeoTIFF" in res.output
    assert not (tmp_path / "x.gpkg").exists()


def test_the_class_raster_marks_pixels_without_data_not_observed(scene, tmp_path):
    dn = _dn(scene)
    dn[:, :10, :] = 0  # nodata rows
    img = _write(tmp_path / "img.tif", dn, "uint16", scene)
    res = _detect(img, "--out", tmp_path / "o.gpkg", "--raster", tmp_path / "c.tif", "--method", "rules")
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "c.tif") as src:
        classes, conf = src.read()
        assert src.nodata == 255
    assert (classes[:10] == 255).all() and (conf[:10] == 255).all()
    assert (classes[10:] <= 2).all() and (conf[10:] <= 100).all()


def _items(tmp_path, features):
    p = tmp_path / "items.json"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return p


def _search(tmp_path, items, *extra):
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [[[98.0, 26.0], [98.1, 26.0], [98.1, 26.1],
                                                                    [98.0, 26.1], [98.0, 26.0]]]}))
    res = CliRunner().invoke(cli, ["search", "--aoi", str(aoi), "--period", "2019-11-01/2020-04-30",
                                   "--stac-url", str(items), *map(str, extra)])
    assert "Traceback" not in res.output, res.output
    return res


def _item(i, when):
    return {"type": "Feature", "stac_version": "1.0.0", "id": f"S2_{i}", "collection": "sentinel-2-l2a",
            "geometry": {"type": "Polygon", "coordinates": [[[97.9, 25.9], [98.2, 25.9], [98.2, 26.2], [97.9, 26.2],
                                                            [97.9, 25.9]]]},
            "bbox": [97.9, 25.9, 98.2, 26.2], "links": [], "assets": {},
            "properties": {"datetime": when, "eo:cloud_cover": 5}}


def test_search_reads_naive_datetimes_as_utc_and_refuses_broken_items(tmp_path):
    ok = _search(tmp_path, _items(tmp_path, [_item(1, "2019-11-18T00:00:00"), _item(2, "2019-12-01T03:00:00Z")]))
    assert ok.exit_code == 0 and "S2_1" in ok.output and "S2_2" in ok.output  # was a TypeError sorting them
    no_date = _item(3, None)
    res = _search(tmp_path, _items(tmp_path, [no_date]))
    assert res.exit_code == 3 and "'S2_3' is no valid STAC item" in res.output
    res = _search(tmp_path, _items(tmp_path, [1]))
    assert res.exit_code == 3 and "feature 0 is int" in res.output


def test_search_outputs_must_differ_from_each_other_and_the_item_file(tmp_path):
    items = _items(tmp_path, [_item(1, "2019-11-18T00:00:00Z")])
    before = items.read_text()
    res = _search(tmp_path, items, "--json", items)
    assert res.exit_code == 2 and "would overwrite its input --stac-url" in res.output
    res = _search(tmp_path, items, "--json", tmp_path / "s.out", "--csv", tmp_path / "s.out")
    assert res.exit_code == 2 and "is also the path of --json" in res.output
    assert items.read_text() == before and not (tmp_path / "s.out").exists()

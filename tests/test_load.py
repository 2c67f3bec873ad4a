"""COG loading: window reads onto a grid, baseline offsets, nodata, resampling, the window cache and
HTTP faults — against real range servers on 127.0.0.1 (see tests/servers.py)."""

from __future__ import annotations

import json
from pathlib import Path
import logging
from dataclasses import replace

import numpy as np
import pystac
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

import s2fixtures as fx
from geo.aoi import read_aoi
from geo.cache import WindowCache
from geo.errors import NoDataError, RasterError, StacError
from geo.grid import GeoGrid
from geo.load import load_stack, scaling_for
from geo.periods import dry_season
from geo.providers import PROVIDERS, Provider, with_url
from geo.remote import ByteCounter, RetryPolicy
from geo.stac import search
from servers import SAS_TOKEN

FAST = RetryPolicy(attempts=4, backoff_s=0.05, max_backoff_s=3.0, timeout_s=1.0)
SEASON = dry_season(2021)
#: 250×110 px at 10 m across both tiles (tile QQU ends at x 432560, QRU starts at 432000)
GRID = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 430500, 0, -10, 2839600), 250, 110)
#: reaches into the nodata rows at the bottom of the tiles (y < 2837520)
EDGE_GRID = GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 430000, 0, -10, 2837600), 40, 20)


def _aoi(tmp_path):
    p = tmp_path / "aoi.geojson"
    p.write_text(json.dumps(fx.aoi_geojson(430500, 2838500, 433000, 2839600)))
    return read_aoi(p)


def _items(path) -> list[pystac.Item]:
    return [pystac.Item.from_dict(f) for f in json.loads(path.read_text())["features"]]


def _kept(items):
    keep = {"S2B_47QQU_20211203_0_L2A", "S2B_47QRU_20211203_0_L2A", "S2B_47QQU_20220107_1_L2A",
            "S2A_47QQU_20220318_0_L2A"}
    return [i for i in items if i.id in keep]


def _expected_10m(grid, band, new_baseline):
    xs = grid.transform.c + 10 * np.arange(grid.width) + 5
    dn = fx.expected_dn(band, xs, new_baseline)
    return np.broadcast_to(dn * 1e-4 - (0.1 if new_baseline else 0.0), grid.shape)


@pytest.fixture
def local_items(cloud):
    return _kept(_items(cloud.es_items_local))


def test_local_load_values_offsets_and_mosaic(local_items):
    st = load_stack(local_items, GRID)
    assert st.data.shape == (3, 6, 110, 250) and st.data.dtype == np.float32
    assert st.bands == ("B02", "B03", "B04", "B08", "B11", "B12")
    assert st.item_ids[0] == "S2B_47QQU_20211203_0_L2A+S2B_47QRU_20211203_0_L2A"  # one datatake, two tiles
    for t in range(3):
        cols = slice(None) if t == 0 else slice(0, 206)  # tile QQU alone ends at column 206
        for bi, b in enumerate(fx.BANDS_10):
            # both baselines give the same reflectance once the offset is applied
            np.testing.assert_allclose(st.data[t, bi, :, cols], _expected_10m(GRID, b, False)[:, cols], atol=1e-6)
        np.testing.assert_allclose(st.data[t, 4, :, cols], 0.19, atol=1e-6)  # 20 m band resampled onto 10 m
        np.testing.assert_allclose(st.data[t, 5, :, cols], 0.20, atol=1e-6)
    # the datatake mosaic fills the part of the grid only tile QRU covers (x >= 432560)
    assert np.isfinite(st.data[0, :, :, -1]).all()
    assert np.isnan(st.data[1, :, :, -1]).all()  # single-tile scenes leave it empty
    # SCL: nearest, 9 where the 20 m column index % 16 < 4
    xs = GRID.transform.c + 10 * np.arange(GRID.width) + 5
    col20 = np.floor((xs - fx.X0) / 20).astype(int)
    np.testing.assert_array_equal(st.scl[0, 0], np.where(col20 % 16 < 4, 9, 4))


def test_nodata_becomes_nan_and_scl_zero(local_items):
    st = load_stack(local_items[2:3], EDGE_GRID)
    assert np.isnan(st.data[0, :, -12:]).all()  # the 8 nodata rows of the tile (and 20 m rows)
    assert np.isfinite(st.data[0, :4, :4]).all()
    assert (st.scl[0, -8:] == 0).all()


def test_other_crs_grid(local_items):
    bounds = transform_bounds("EPSG:32647", "EPSG:32646", 430600, 2838600, 430900, 2838900)
    g = GeoGrid.from_bounds(bounds, "EPSG:32646", 10)  # UTM 46N, same place
    st = load_stack(local_items[2:3], g, bands=("red",), with_scl=False)
    assert st.scl is None and st.bands == ("B04",)
    assert np.isfinite(st.data).all()
    assert 0.12 < st.data.min() and st.data.max() < 0.13  # B04: DN 2200+col%97 with baseline 04.00


def test_scaling_rules(local_items):
    it = local_items[2].clone()
    a = it.assets["red"]
    assert scaling_for(it, a).offset == pytest.approx(-0.1)
    a.extra_fields.pop("raster:bands")
    assert scaling_for(it, a).source.startswith("s2:processing_baseline")
    it.properties["s2:processing_baseline"] = "03.01"
    assert scaling_for(it, a).offset == 0.0
    it.properties["earthsearch:boa_offset_applied"] = True
    assert scaling_for(it, a).offset == 0.0
    del it.properties["earthsearch:boa_offset_applied"], it.properties["s2:processing_baseline"]
    with pytest.raises(RasterError, match="offset is unknown"):
        scaling_for(it, a)
    with pytest.raises(RasterError, match="offset is unknown"):
        load_stack([it], GRID)


def test_bad_inputs(local_items):
    with pytest.raises(NoDataError):
        load_stack([], GRID)
    it = local_items[0].clone()
    it.assets["red"].href = "s3://sentinel-cogs/x/B04.tif"
    with pytest.raises(RasterError, match="scheme 's3'"):
        load_stack([it], GRID, bands=("B04",), with_scl=False)
    del it.assets["red"]
    with pytest.raises(RasterError, match="no asset for band B04"):
        load_stack([it], GRID, bands=("B04",), with_scl=False)


# -- over HTTP -------------------------------------------------------------------------------

def test_http_equals_local_and_reads_little(cloud, local_items):
    counter = ByteCounter()
    http_items = _kept(_items(cloud.es_items_http))
    a = load_stack(local_items, GRID)
    b = load_stack(http_items, GRID, policy=FAST, counter=counter)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.scl, b.scl)
    assert counter.bytes == cloud.files.bytes_sent > 0
    assert counter.requests <= 2 * 4 * 7  # at most header + one tile run per file


def test_cache_rerun_reads_nothing(cloud, tmp_path):
    items = _kept(_items(cloud.es_items_http))
    first = load_stack(items, GRID, cache_dir=tmp_path / "c", policy=FAST)
    assert cloud.files.bytes_sent > 0
    cloud.files.reset_counts()
    second = load_stack(items, GRID, cache_dir=tmp_path / "c", policy=FAST)
    assert cloud.files.log == []  # nothing fetched twice
    np.testing.assert_array_equal(first.data, second.data)
    cache = WindowCache(tmp_path / "c")
    assert len(cache.entries()) == 4 * 7 and cache.temporaries() == []


@pytest.mark.parametrize("fault,kw", [
    ("status", {"code": 500}), ("status", {"code": 503}), ("429", {"retry_after": 1}),
    ("stall", {"seconds": 2.5}), ("truncate", {}), ("drop", {}),
])
def test_http_faults_recovered(cloud, tmp_path, local_items, fault, kw):
    items = _kept(_items(cloud.es_items_http))[2:3]
    cloud.files.inject(fault, times=2, path=r"/B04\.tif$", **kw)
    st = load_stack(items, GRID, cache_dir=tmp_path / "c", policy=FAST)
    ref = load_stack(local_items[2:3], GRID)
    np.testing.assert_array_equal(st.data, ref.data)
    b04 = [s for (m, p, s) in cloud.files.log if p.endswith("/B04.tif")]
    assert len(b04) >= 3 and str(b04[0]) != "206"
    cache = WindowCache(tmp_path / "c")
    assert cache.temporaries() == [] and all(np.load(p).shape == GRID.shape for p in cache.entries())


def test_http_persistent_failure_leaves_no_corrupt_cache(cloud, tmp_path):
    items = _kept(_items(cloud.es_items_http))[2:3]
    cloud.files.inject("status", times=1000, path=r"/B11\.tif$", code=503)
    with pytest.raises(StacError, match=r"B11\.tif failed after 2 tries \(last: HTTP 503\)"):
        load_stack(items, GRID, cache_dir=tmp_path / "c", policy=replace(FAST, attempts=2))
    cache = WindowCache(tmp_path / "c")
    assert cache.temporaries() == []
    assert all(np.load(p).shape == GRID.shape for p in cache.entries())
    assert len(cache.entries()) < 7  # B11 never cached
    cloud.files.clear()
    cloud.files.reset_counts()
    load_stack(items, GRID, cache_dir=tmp_path / "c", policy=FAST)  # rerun fetches only what is missing
    fetched = {p.rsplit("/", 1)[1] for (m, p, s) in cloud.files.log}
    assert "B11.tif" in fetched and len(fetched) <= 7 - len(cache.entries()) + 1 + 1


def test_damaged_cache_entry_is_refetched(cloud, tmp_path):
    items = _kept(_items(cloud.es_items_http))[2:3]
    load_stack(items, GRID, cache_dir=tmp_path / "c", policy=FAST, bands=("B04",), with_scl=False)
    (entry,) = WindowCache(tmp_path / "c").entries()
    entry.write_bytes(entry.read_bytes()[:100])
    cloud.files.reset_counts()
    st = load_stack(items, GRID, cache_dir=tmp_path / "c", policy=FAST, bands=("B04",), with_scl=False)
    assert len(cloud.files.log) >= 1 and np.isfinite(st.data).any()


def test_planetary_computer_end_to_end(cloud, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    prov = with_url(PROVIDERS["planetary-computer"], cloud.pc_api.url, policy=FAST,
                    token_url=f"{cloud.pc_files.url}/api/sas/v1/token")
    items = search(_aoi(tmp_path), SEASON, provider=prov)
    st = load_stack(items, GRID, policy=FAST, cache_dir=tmp_path / "c")
    for bi, b in enumerate(fx.BANDS_10):  # PC items carry no raster:bands: offset from the baseline
        np.testing.assert_allclose(st.data[:, bi, :, :206], np.broadcast_to(_expected_10m(GRID, b, False)[:, :206],
                                                                            (3, 110, 206)), atol=1e-6)
    assert "sig=" not in caplog.text and "c2VjcmV0" not in caplog.text
    assert not any(SAS_TOKEN in p.read_text(errors="ignore") for p in (tmp_path / "c").rglob("*") if p.is_file())
    unsigned = items[1].clone()
    for a in unsigned.assets.values():
        a.href = a.href.split("?")[0]
    with pytest.raises(StacError, match="HTTP 403.*signature"):
        load_stack([unsigned], GRID, policy=FAST, bands=("B04",), with_scl=False)


def test_earth_search_end_to_end(cloud, tmp_path):
    items = search(_aoi(tmp_path), SEASON, provider=Provider("es", cloud.es_api.url, policy=FAST))
    st = load_stack(items, GRID, policy=FAST)
    assert st.data.shape[0] == 3 and np.isfinite(st.data[:, :, :, :206]).all()
    assert np.isfinite(st.data[0]).all()  # the two-tile datatake covers the whole grid


@pytest.mark.slow
def test_demo_dataset_local_and_over_http(tmp_path):
    """The embedded demo's items load the same from local files and from rustac + a range server."""
    demo_data = pytest.importorskip("geo.demo_data")
    from servers import RangeServer, RustacServer, rustac_binary

    ds = demo_data.write_demo_dataset(tmp_path / "demo")
    aoi = read_aoi(ds.aoi_path)
    season = ds.periods[2]  # 2021-22: both baselines
    items = search(aoi, season, provider=str(ds.items_path), max_cloud=100)
    assert {i.properties["s2:processing_baseline"] for i in items} >= {"04.00"}
    local = load_stack(items, ds.grid)
    assert local.data.shape[1:] == (6, *ds.grid.shape) and np.isfinite(local.data).mean() > 0.9
    med = np.nanmedian(local.data[:, 2], axis=(1, 2))  # B04 per scene: offsets harmonise baselines
    assert med.max() - med.min() < 0.05
    if rustac_binary() is None:
        pytest.skip("rustac missing: HTTP half skipped")
    doc = json.loads(ds.items_path.read_text())
    with RangeServer(ds.root) as rs:
        for f in doc["features"]:
            for a in f["assets"].values():
                if a["href"].startswith(str(ds.root)):
                    a["href"] = rs.url + "/" + str(Path(a["href"]).relative_to(ds.root.resolve()))
        (tmp_path / "items_http.json").write_text(json.dumps(doc))
        with RustacServer([tmp_path / "items_http.json"]) as api:
            http_items = search(aoi, season, provider=api.url, max_cloud=100)
            assert [i.id for i in http_items] == [i.id for i in items]
            remote = load_stack(http_items, ds.grid, policy=FAST)
    np.testing.assert_array_equal(local.data, remote.data)

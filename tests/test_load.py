"""COG loading: window reads onto a grid, baseline offsets, nodata, resampling, the window cache and
HTTP faults — against real range servers on 127.0.0.1 (see tests/servers.py)."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from dataclasses import replace

import numpy as np
import pystac
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

import s2fixtures as fx
from geo.aoi import read_aoi
from geo.sources.cache import WindowCache
from geo.errors import AccessDeniedError, NoDataError, RasterError, StacError, exit_code_for
from geo.grid import GeoGrid
from geo.sources.assets import scaling_for
from geo.sources.load import load_stack
from geo.periods import dry_season
from geo.sources.providers import PROVIDERS, SIGNER_PROPERTY, Provider, with_url
from geo.sources.remote import ByteCounter, RetryPolicy
from geo.sources.stac import search
from servers import SECRET_MARK, forget_cog_headers, fresh_process_caches

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
    assert cache.temporaries() == [] and all(cache.read_entry(p).shape == GRID.shape for p in cache.entries())


def test_http_persistent_failure_leaves_no_corrupt_cache(cloud, tmp_path):
    items = _kept(_items(cloud.es_items_http))[2:3]
    cloud.files.inject("status", times=1000, path=r"/B11\.tif$", code=503)
    with pytest.raises(StacError, match=r"B11\.tif failed after 2 tries \(last: HTTP 503\)"):
        load_stack(items, GRID, cache_dir=tmp_path / "c", policy=replace(FAST, attempts=2))
    cache = WindowCache(tmp_path / "c")
    assert cache.temporaries() == []
    assert all(cache.read_entry(p).shape == GRID.shape for p in cache.entries())
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


def _pc(cloud) -> Provider:
    return with_url(PROVIDERS["planetary-computer"], cloud.pc_api.url, policy=FAST,
                    token_url=f"{cloud.pc_files.url}/api/sas/v1/token")


def _reads(proxy) -> list:
    """Outcomes of the asset reads (token requests left out) a FaultProxy answered."""
    return [s for (m, p, s) in proxy.log if "/api/sas/" not in p]


def test_planetary_computer_end_to_end(cloud, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # `minewatch` (run by earlier tests) quietens it
    items = search(_aoi(tmp_path), SEASON, provider=_pc(cloud))
    st = load_stack(items, GRID, policy=FAST, cache_dir=tmp_path / "c")
    for bi, b in enumerate(fx.BANDS_10):  # PC items carry no raster:bands: offset from the baseline
        np.testing.assert_allclose(st.data[:, bi, :, :206], np.broadcast_to(_expected_10m(GRID, b, False)[:, :206],
                                                                            (3, 110, 206)), atol=1e-6)
    assert cloud.pc_files.token_requests == 1  # one token for 28 window reads on 4 threads
    assert cloud.pc_files.tokens.refused == 0 and set(_reads(cloud.pc_files)) == {206}
    assert "sig=" not in caplog.text and SECRET_MARK not in caplog.text
    assert "?<redacted>" in caplog.text  # signed URLs do reach urllib3's debug log: geo.sources.remote's filter strips them
    assert not any(SECRET_MARK in p.read_text(errors="ignore") for p in (tmp_path / "c").rglob("*") if p.is_file())
    unmarked = items[1].clone()
    del unmarked.properties[SIGNER_PROPERTY]  # nobody signs its reads
    with pytest.raises(AccessDeniedError, match="HTTP 403.*signature"):
        load_stack([unmarked], GRID, policy=FAST, bands=("B04",), with_scl=False)


@pytest.fixture
def pc_reference(cloud, tmp_path):
    """The PC items of the season and their undisturbed load (counters reset afterwards)."""
    items = search(_aoi(tmp_path), SEASON, provider=_pc(cloud))
    ref = load_stack(items, GRID, policy=FAST)
    cloud.reset()
    fresh_process_caches()
    return items, ref


@pytest.mark.parametrize("disturb,tokens", [
    ("rotated after 5 reads", 2),     # the reads after it are refused once, renew the token and retry
    ("first token expired", 2),        # issued already expired: refused, renewed once
    ("first token near expiry", 2),    # 4 min left (< 5 min margin): renewed before any refusal
])
def test_planetary_computer_token_renewal(cloud, tmp_path, pc_reference, disturb, tokens):
    items, ref = pc_reference
    t = cloud.pc_files.tokens
    if disturb.startswith("rotated"):
        t.revoke_after = 5
    else:
        t.ttls_s = [-60.0] if "expired" in disturb else [240.0]
    st = load_stack(items, GRID, policy=FAST, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(st.data, ref.data)
    np.testing.assert_array_equal(st.scl, ref.scl)
    assert cloud.pc_files.token_requests == tokens
    assert (t.refused > 0) == (disturb != "first token near expiry")
    assert t.refused <= 4  # at most the reads in flight on the 4 threads when the token died
    # the cache keys hold no token: after another rotation a rerun reads (and signs) nothing
    t.revoke()
    cloud.pc_files.reset_counts()
    fresh_process_caches()
    again = load_stack(items, GRID, policy=FAST, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again.data, ref.data)
    assert cloud.pc_files.log == []


def test_planetary_computer_refusal_is_one_clear_error(cloud, tmp_path, pc_reference):
    """A server that refuses every token: one renewal, then one error line without the token; later reads in
    the process fail at once instead of asking for a token per window."""
    items, _ = pc_reference
    cloud.pc_files.tokens.refuse_all = True
    with pytest.raises(AccessDeniedError) as err:
        load_stack(items, GRID, policy=FAST, bands=("B04",), with_scl=False, workers=1)
    msg = str(err.value)
    assert "\n" not in msg and "sig=" not in msg and SECRET_MARK not in msg and "?" not in msg
    assert "HTTP 403" in msg and "freshly issued SAS token" in msg and err.value.status == 403
    assert exit_code_for(err.value) == 3
    assert cloud.pc_files.token_requests == 2 and len(_reads(cloud.pc_files)) == 2
    forget_cog_headers()
    with pytest.raises(AccessDeniedError):  # the same process again: no request at all
        load_stack(items[1:2], GRID, policy=FAST, bands=("B04",), with_scl=False)
    assert cloud.pc_files.token_requests == 2 and len(_reads(cloud.pc_files)) == 2
    e = pickle.loads(pickle.dumps(err.value))  # as a Dask worker sends it back
    assert type(e) is AccessDeniedError and str(e) == msg and e.status == 403


def test_earth_search_end_to_end(cloud, tmp_path):
    items = search(_aoi(tmp_path), SEASON, provider=Provider("es", cloud.es_api.url, policy=FAST))
    st = load_stack(items, GRID, policy=FAST)
    assert st.data.shape[0] == 3 and np.isfinite(st.data[:, :, :, :206]).all()
    assert np.isfinite(st.data[0]).all()  # the two-tile datatake covers the whole grid


@pytest.mark.slow
def test_demo_dataset_local_and_over_http(tmp_path):
    """The embedded demo's items load the same from local files and from rustac + a range server."""
    demo_data = pytest.importorskip("geo.sim.demo")
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


# -- range reads: few requests, headers kept per file ----------------------------------------

def _tiled_cog(path, seed=3, size=1024):
    """A 10 m COG of 128 px tiles of noisy DN (about 30 KB a tile compressed, so a window's tiles lie far
    beyond the first request's 32 KB)."""
    arr = np.random.default_rng(seed).integers(1, 10000, (size, size), dtype=np.uint16)
    fx.write_cog(path, arr, Affine(10, 0, 430000, 0, -10, 2840000), blocksize=128)
    return arr


def _window_grid(col, row, w, h):
    return GeoGrid(CRS.from_epsg(32647), Affine(10, 0, 430000 + 10 * col, 0, -10, 2840000 - 10 * row), w, h)


def test_plan_ranges_merges_near_ranges_under_a_cap():
    from geo.sources.cog_ranges import plan_ranges

    assert plan_ranges([0, 100, 50], [100, 50, 10], gap=0) == [(0, 150)]  # touching and overlapping
    assert plan_ranges([0, 1000], [100, 100], gap=900) == [(0, 1100)]
    assert plan_ranges([0, 1000], [100, 100], gap=899) == [(0, 100), (1000, 1100)]
    assert plan_ranges([0, 200, 400], [100, 100, 100], gap=100, max_len=300) == [(0, 300), (400, 500)]
    assert plan_ranges([5000, 0], [0, 10]) == [(0, 10)]  # empty ranges need nothing


def test_multi_tile_window_needs_no_more_requests_than_gdal(tmp_path):
    """A window across 3×3 COG tiles costs the header plus one request per tile row (GDAL's /vsicurl/ needs
    at least as many); another window of the same file, even under another signature, re-reads no header."""
    import rasterio
    from rasterio.windows import Window

    from geo.sources.load import read_window
    from servers import FaultProxy, RangeServer

    arr = _tiled_cog(tmp_path / "B04.tif")
    grid = _window_grid(100, 100, 250, 250)  # columns and rows 100..350: tiles 0..2 both ways
    with RangeServer(tmp_path) as rs, FaultProxy(rs.url) as px:
        href = f"{px.url}/B04.tif"
        got = read_window(href, grid, policy=FAST)
        ours = len(px.log)
        np.testing.assert_array_equal(got, arr[100:350, 100:350])
        px.reset_counts()
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            with rasterio.open(f"/vsicurl/{href}?fresh=1") as src:  # a URL GDAL's /vsicurl/ cache has not seen
                np.testing.assert_array_equal(src.read(1, window=Window(100, 100, 250, 250)), arr[100:350, 100:350])
        gdal = len(px.log)
        assert ours <= 1 + 3 and ours <= gdal + 1, (ours, gdal)

        px.reset_counts()
        grid2 = _window_grid(300, 600, 100, 100)  # tiles 2..3 × 4..5: two rows of two tiles
        got = read_window(href + "?sig=another-token", grid2, policy=FAST)
        np.testing.assert_array_equal(got, arr[600:700, 300:400])
        assert len(px.log) == 2  # one request per tile row, none for the header


def test_cached_header_of_a_changed_file_is_refetched(tmp_path):
    from geo.sources.load import read_window
    from servers import FaultProxy, RangeServer

    _tiled_cog(tmp_path / "B04.tif", seed=1)
    grid = _window_grid(100, 100, 250, 250)
    with RangeServer(tmp_path) as rs, FaultProxy(rs.url) as px:
        href = f"{px.url}/B04.tif"
        read_window(href, grid, policy=FAST)
        new = _tiled_cog(tmp_path / "B04.tif", seed=2, size=768)  # same URL, other size and tile offsets
        np.testing.assert_array_equal(read_window(href, grid, policy=FAST), new[100:350, 100:350])


def test_faults_after_a_cached_header_are_retried_or_reported(tmp_path):
    from geo.sources.load import read_window
    from servers import FaultProxy, RangeServer

    arr = _tiled_cog(tmp_path / "B04.tif")
    grid = _window_grid(100, 100, 250, 250)
    with RangeServer(tmp_path) as rs, FaultProxy(rs.url) as px:
        href = f"{px.url}/B04.tif"
        read_window(href, grid, policy=FAST)  # header now cached: the next read starts with tile requests
        px.reset_counts()
        px.inject("status", times=2, code=503)
        np.testing.assert_array_equal(read_window(href, grid, policy=FAST), arr[100:350, 100:350])
        assert [s for _, _, s in px.log[:2]] == [503, 503]
        px.fail_all("status", code=503)
        with pytest.raises(StacError, match=r"B04\.tif failed after 2 tries \(last: HTTP 503\)"):
            read_window(href + "?sig=x", grid, policy=replace(FAST, attempts=2))


def test_planetary_computer_renewed_token_may_be_renewed_again(cloud, tmp_path, pc_reference):
    """A long run outlives several rotations: a renewed token that worked and is revoked later is renewed again
    (only a renewed token refused before any read succeeded with it is final)."""
    items, ref = pc_reference
    t = cloud.pc_files.tokens
    t.revoke_after = 5
    first = load_stack(items, GRID, policy=FAST, cache_dir=tmp_path / "c1")
    np.testing.assert_array_equal(first.data, ref.data)
    assert cloud.pc_files.token_requests == 2
    t.revoke()  # the renewed token dies too, later in the same process
    forget_cog_headers()
    again = load_stack(items, GRID, policy=FAST, cache_dir=tmp_path / "c2")
    np.testing.assert_array_equal(again.data, ref.data)
    assert cloud.pc_files.token_requests == 3


def test_window_cache_stores_deflated_dn_and_keeps_to_its_cap(tmp_path):
    """Entries are integer DN, deflated (smaller than the float32 window); past the cap the least recently used go."""
    import os

    rng = np.random.default_rng(0)
    win = rng.integers(900, 1300, size=(256, 256)).astype(np.uint16)  # a smooth-ish reflectance window, DN
    cache = WindowCache(tmp_path / "c", max_bytes=10**9)
    p = cache.put("a" * 40, win)
    assert p.stat().st_size < win.astype(np.float32).nbytes / 2
    np.testing.assert_array_equal(cache.get("a" * 40), win)
    assert cache.get("a" * 40).dtype == np.uint16
    one = p.stat().st_size
    small = WindowCache(tmp_path / "d", max_bytes=int(one * 3.5))
    for i in range(6):
        small.put(f"{i:02d}" + "k" * 38, win)
        os.utime(small.path(f"{i:02d}" + "k" * 38), ns=(i * 10**9, i * 10**9))  # ages in write order
        if i == 2:
            assert small.get("00" + "k" * 38) is not None  # a hit makes entry 0 the most recently used
            os.utime(small.path("00" + "k" * 38), ns=(10 * 10**9, 10 * 10**9))
    kept = {q.name[:2] for q in small.entries()}
    assert small.size() <= small.max_bytes and len(kept) <= 3
    assert kept == {"00", "04", "05"}

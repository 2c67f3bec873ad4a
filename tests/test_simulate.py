"""Tests of the scene simulator (geo.sim.scene*) and the demo writer (geo.sim.demo)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from pyproj import Transformer
from scipy import ndimage
from shapely.geometry import box, shape

from geo.aoi import analysis_grid, read_aoi
from geo.bands import ANALYSIS_BANDS
from geo.sim.demo import write_demo_dataset
from geo.errors import ConfigError
from models.data import shared_data_dir
from geo.sim.scene import (BASELINE_04_DATE, SimConfig, baseline_for, render_acquisition, simulate, site_id_map,
                          training_pair)
from geo.sim.atmos import SCL_HIGH, SCL_MEDIUM, SCL_SHADOW, mode_2x2
from geo.sim.spectra import LC_NAMES, load_spectra

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
SMALL = SimConfig(seed=3, width=200, height=200, margin=20, start_year=2020, end_year=2022,
                  acquisitions_per_season=4, initial_sites=3, new_sites_per_season=1, abandoned_sites=1,
                  cloud_amount=0.3, clear_probability=0.3, nodata_probability=0.3)


@pytest.fixture(scope="module")
def scn():
    return simulate(SimConfig())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return write_demo_dataset(root, config=SMALL), simulate(SMALL)


# --- determinism -------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_scenes(scn):
    again = simulate(SimConfig())
    for a, b in zip(scn.truth, again.truth):
        np.testing.assert_array_equal(a.classes, b.classes)
    assert scn.plans == again.plans
    x, y = render_acquisition(scn, 2), render_acquisition(again, 2)
    for band in ANALYSIS_BANDS:
        np.testing.assert_array_equal(x.dn[band], y.dn[band])
    np.testing.assert_array_equal(x.scl, y.scl)


def test_different_seed_gives_different_scenes(scn):
    other = simulate(SimConfig(seed=8))
    assert not np.array_equal(scn.truth[-1].classes, other.truth[-1].classes)
    assert not np.array_equal(render_acquisition(scn, 0).dn["B04"], render_acquisition(other, 0).dn["B04"])


def test_training_pair_deterministic_and_varied():
    a, la = training_pair(11)
    b, lb = training_pair(11)
    c, _ = training_pair(12)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert a.shape == (6, 256, 256) and a.dtype == np.float32 and la.dtype == np.uint8
    assert 0 < a.min() and a.max() <= 1.0
    # B11/B12 are 20 m: every 2x2 block is constant.
    np.testing.assert_array_equal(a[4, ::2, ::2], a[4, 1::2, 1::2])
    small, ls = training_pair(5, size=64, randomize=False)
    assert small.shape == (6, 64, 64) and ls.shape == (64, 64)


def test_training_pairs_contain_both_classes_and_are_fast():
    counts = np.zeros(3)
    t0 = time.perf_counter()
    for s in range(8):
        _, lab = training_pair(s)
        counts += np.bincount(lab.ravel(), minlength=3)
    per_pair = (time.perf_counter() - t0) / 8
    assert counts[1] > 0 and counts[2] > 0
    assert per_pair < 1.5, f"training_pair took {per_pair:.2f} s (target < 0.5 s on an idle core)"


# --- truth ---------------------------------------------------------------------------------------------------

def test_truth_grows_at_least_40_percent(scn):
    first, last = scn.truth[0], scn.truth[-1]
    assert last.footprint_area_m2 >= 1.4 * first.footprint_area_m2
    assert last.site_count >= 1.4 * first.site_count
    for tr in scn.truth:  # summary numbers agree with the class map
        assert tr.pond_area_m2 == (tr.classes == 2).sum() * 100.0
        assert tr.cleared_area_m2 == (tr.classes == 1).sum() * 100.0
        assert tr.classes.shape == (scn.config.height, scn.config.width)


def test_abandoned_sites_lose_ponds_and_regrow(scn):
    abandoned = [s for s in scn.sites if s.abandon is not None]
    assert abandoned
    ids = site_id_map(scn)
    for s in abandoned:
        assert 0 < s.abandon < len(scn.periods) - 1
        mask = ids == s.site_id
        before = scn.truth[s.abandon - 1].classes[mask]
        assert (before == 2).any(), "an abandoned site had ponds while working"
        for t in range(s.abandon, len(scn.periods)):
            assert not (scn.truth[t].classes[mask] == 2).any(), "ponds must vanish once a site is abandoned"
        areas = [scn.truth[t].site_area_m2.get(s.site_id, 0.0) for t in range(s.abandon - 1, len(scn.periods))]
        assert areas[-1] < areas[0] and all(b <= a for a, b in zip(areas, areas[1:]))


def test_sites_are_separated_and_away_from_the_river(scn):
    ids = site_id_map(scn)
    m = scn.config.margin
    river = scn.landscape.river_dist[m:m + scn.config.height, m:m + scn.config.width]
    assert river[ids > 0].min() >= scn.config.river_clearance_m / 10
    for s in scn.sites:
        mask = ids == s.site_id
        if not mask.any():
            continue
        dist = ndimage.distance_transform_edt(~mask)
        others = (ids > 0) & ~mask
        if others.any():
            assert dist[others].min() >= scn.config.site_gap_m / 10 - 1


# --- acquisitions ------------------------------------------------------------------------------------------

def test_scl_is_consistent_with_clouds_and_shadows(scn):
    cloudy = [p.index for p in scn.plans if p.cloud_fraction > 0.2]
    assert cloudy
    acq = render_acquisition(scn, cloudy[0])
    h, w = acq.scl.shape

    def all4(a):
        return a.reshape(h, 2, w, 2).all(axis=(1, 3))

    valid = all4(acq.valid)
    thick = all4(acq.cloud >= SCL_MEDIUM) & valid
    assert thick.sum() > 100
    assert np.isin(acq.scl[thick], (8, 9, 10)).all()
    assert (acq.scl[all4(acq.cloud >= SCL_HIGH) & valid] == 9).all()
    shadow = all4(acq.shadow >= SCL_SHADOW) & all4(acq.cloud == 0) & valid
    assert shadow.sum() > 20
    assert np.isin(acq.scl[shadow], (3, 10)).all()
    clear = all4(acq.cloud == 0) & all4(acq.shadow == 0) & valid
    assert not np.isin(acq.scl[clear], (3, 8, 9)).any()
    # Clouds are bright, shadows are dark (B04 reflectance).
    red = acq.reflectance["B04"][::2, ::2][: h, : w]
    assert np.median(red[thick]) > 3 * np.median(red[clear])
    assert acq.cloud.mean() == pytest.approx(acq.plan.cloud_fraction, abs=0.05 + 0.5 * acq.plan.cloud_fraction)


def test_mode_2x2_prefers_majority_then_clouds_and_nodata():
    scl = np.array([[4, 4, 9, 4], [4, 5, 8, 5], [0, 6, 3, 3], [6, 6, 6, 6]], np.uint8)
    np.testing.assert_array_equal(mode_2x2(scl), [[4, 9], [0, 3]])


def test_baseline_offset_applied_from_2022_01_25(scn):
    assert baseline_for(dt.date(2022, 1, 24)) == ("03.01", 0)
    assert baseline_for(BASELINE_04_DATE) == ("04.00", 1000)
    assert baseline_for(dt.date(2020, 1, 1)) == ("02.14", 0)
    before = [p for p in scn.plans if p.date < BASELINE_04_DATE]
    after = [p for p in scn.plans if p.date >= BASELINE_04_DATE]
    assert before and after
    assert all(p.offset_dn == 0 for p in before) and all(p.offset_dn == 1000 for p in after)
    for plan in (before[-1], after[0]):
        acq = render_acquisition(scn, plan.index)
        for band in ("B04", "B12"):
            dn, refl = acq.dn[band], acq.reflectance[band]
            ok = dn > 0
            expect = np.clip(np.round(refl * 10000) + plan.offset_dn, 1, 65535)
            np.testing.assert_array_equal(dn[ok], expect[ok])
        assert acq.dn["B11"].shape == acq.scl.shape == (scn.scene_grid.height // 2, scn.scene_grid.width // 2)


def test_config_rejects_odd_sizes_and_overfull_layouts():
    with pytest.raises(ConfigError, match="even"):
        SimConfig(width=401)
    with pytest.raises(ConfigError, match="fit"):
        simulate(SimConfig(width=200, height=200, initial_sites=10, new_sites_per_season=4))


# --- written demo ------------------------------------------------------------------------------------------

def test_demo_cogs_are_readable_and_georeferenced(demo):
    ds, scn = demo
    items = pystac.ItemCollection.from_file(str(ds.items_path))
    assert len(items) == len(scn.plans)
    item = items.items[0]
    for key in ("blue", "green", "red", "nir", "swir16", "swir22", "scl"):
        asset = item.assets[key]
        with rasterio.open(asset.href) as src:
            assert src.crs.to_epsg() == 32647
            assert src.nodata == 0
            assert list(src.transform)[:6] == asset.extra_fields["proj:transform"]
            assert [src.height, src.width] == asset.extra_fields["proj:shape"]
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.profile["tiled"] and src.profile["compress"] == "deflate"
            assert src.dtypes[0] == ("uint8" if key == "scl" else "uint16")


def test_demo_items_carry_earth_search_metadata(demo):
    ds, scn = demo
    raw = json.loads(ds.items_path.read_text())
    assert raw["type"] == "FeatureCollection"
    seen_offsets = set()
    for d in raw["features"]:
        item = pystac.Item.from_dict(d)
        p = item.properties
        assert item.collection_id == "sentinel-2-l2a"
        assert item.id.startswith(("S2A_47RMJ_", "S2B_47RMJ_", "S2C_47RMJ_")) and item.id.endswith("_0_L2A")
        for key in ("platform", "constellation", "eo:cloud_cover", "s2:processing_baseline",
                    "mgrs:utm_zone", "s2:mgrs_tile"):
            assert key in p, key
        # pystac >= 1.12 migrates projection v1.1 proj:epsg to v2 proj:code on read.
        assert p.get("proj:epsg") == 32647 or p.get("proj:code") == "EPSG:32647"
        assert d["properties"]["proj:epsg"] == 32647
        assert 0 <= p["eo:cloud_cover"] <= 100
        day = item.datetime.date()
        offset = item.assets["red"].extra_fields["raster:bands"][0]["offset"]
        assert offset == (-0.1 if day >= BASELINE_04_DATE else 0.0)
        assert (p["s2:processing_baseline"] == "04.00") == (day >= BASELINE_04_DATE)
        seen_offsets.add(offset)
        assert item.assets["red"].extra_fields["raster:bands"][0]["scale"] == 0.0001
        assert item.assets["red"].extra_fields["eo:bands"][0]["name"] == "B04"
        assert "data" in item.assets["scl"].roles and Path(item.assets["scl"].href).is_absolute()
    assert seen_offsets == {0.0, -0.1}
    col = pystac.Collection.from_file(str(ds.root / "catalog" / "collection.json"))
    assert col.id == "sentinel-2-l2a"


def test_demo_dn_decodes_to_rendered_reflectance(demo):
    ds, scn = demo
    raw = json.loads(ds.items_path.read_text())["features"]
    after = next(i for i, d in enumerate(raw) if d["properties"]["s2:processing_baseline"] == "04.00")
    acq = render_acquisition(scn, after)
    rb = raw[after]["assets"]["nir"]["raster:bands"][0]
    with rasterio.open(raw[after]["assets"]["nir"]["href"]) as src:
        dn = src.read(1)
    ok = dn > 0
    refl = dn[ok] * rb["scale"] + rb["offset"]
    np.testing.assert_allclose(refl, acq.reflectance["B08"][ok], atol=0.6e-4)


def test_demo_truth_files(demo):
    ds, scn = demo
    assert ds.grid == scn.truth_grid and [p.label for p in ds.periods] == [p.label for p in scn.periods]
    rows = list(csv.DictReader((ds.truth_dir / "summary.csv").open()))
    assert [r["period"] for r in rows] == [p.label for p in scn.periods]
    for r, tr in zip(rows, scn.truth):
        with rasterio.open(ds.truth_dir / f"classmap_{r['period']}.tif") as src:
            cls = src.read(1)
            assert src.crs.to_epsg() == 32647 and src.transform == ds.grid.transform
        np.testing.assert_array_equal(cls, tr.classes)
        assert float(r["footprint_area_m2"]) == float(r["pond_area_m2"]) + float(r["cleared_area_m2"])
        assert float(r["pond_area_m2"]) == (cls == 2).sum() * 100
        assert int(r["site_count"]) == tr.site_count
    sites = json.loads((ds.truth_dir / "sites.geojson").read_text())["features"]
    assert len(sites) == len(scn.sites)
    assert any(f["properties"]["abandoned"] for f in sites)
    assert all(f["properties"]["last_period"] is None for f in sites if not f["properties"]["abandoned"])
    lon, lat = shape(sites[0]["geometry"]).centroid.coords[0]
    assert 98.0 < lon < 98.6 and 25.5 < lat < 25.7


def test_demo_aoi_snaps_inside_the_scene(demo):
    ds, scn = demo
    feat = json.loads(ds.aoi_path.read_text())["features"][0]
    assert {"name", "source", "note"} <= set(feat["properties"])
    tr = Transformer.from_crs("EPSG:4326", "EPSG:32647", always_xy=True)
    aoi = shapely.transform(shape(feat["geometry"]), lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    left, bottom, right, top = (np.floor(aoi.bounds[0] / 10) * 10, np.floor(aoi.bounds[1] / 10) * 10,
                                np.ceil(aoi.bounds[2] / 10) * 10, np.ceil(aoi.bounds[3] / 10) * 10)
    # Snapping the AOI outward to 10 m gives back exactly the truth grid, which lies inside the scenes.
    assert (left, bottom, right, top) == scn.truth_grid.bounds
    assert box(*scn.scene_grid.bounds).contains(box(left, bottom, right, top))
    assert analysis_grid(read_aoi(ds.aoi_path)) == ds.grid


def test_demo_write_is_idempotent_and_repairs_incomplete(demo, tmp_path):
    ds, _ = demo
    meta = ds.root / "demo.json"
    stamp = meta.stat().st_mtime_ns
    again = write_demo_dataset(ds.root, config=SMALL)
    assert again == ds and meta.stat().st_mtime_ns == stamp
    # A different config in the same folder rewrites; a missing demo.json (interrupted write) rewrites too.
    cfg = SimConfig(**{**SMALL.to_dict(), "end_year": 2022, "acquisitions_per_season": 1})
    root = tmp_path / "d"
    write_demo_dataset(root, config=cfg)
    (root / "demo.json").unlink()
    (root / "truth" / "summary.csv").write_text("half")
    redo = write_demo_dataset(root, config=cfg)
    assert (redo.truth_dir / "summary.csv").read_text().startswith("period,")
    assert not list(root.rglob(".*.tmp*"))


# --- spectra ---------------------------------------------------------------------------------------------

def test_spectra_table_is_complete_and_physical():
    sp = load_spectra()
    assert sp.mean.shape == (len(LC_NAMES), 6)
    assert (sp.mean > 0).all() and (sp.mean < 1).all() and (sp.std >= 0).all()
    rows = list(csv.DictReader((REPO / "geo" / "data" / "spectra.csv").open()))
    assert all(r["source"] for r in rows)
    assert any(r["source"].startswith("assumption:") for r in rows)
    assert any(int(r["n_pixels"]) > 1000 for r in rows)
    i = {n: k for k, n in enumerate(LC_NAMES)}
    # Vegetation is bright in NIR, water-like ponds are dark in SWIR.
    assert sp.mean[i["forest"], 3] > 3 * sp.mean[i["forest"], 2]
    for pond in ("pond_turquoise", "pond_milky", "pond_brown"):
        assert sp.mean[i[pond], 4] < 0.06


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real Sentinel-2 chips) is not checked out")
def test_derive_script_reproduces_spectra_csv():
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "derive_spectra.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr

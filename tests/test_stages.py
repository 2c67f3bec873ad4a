"""Unit tests of the array stages: cloud mask, composite, vectorize, sites, change, claims."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from geo.results.change import ChangeConfig, period_row, site_changes, summarize
from geo.results.claims import compare_claims, season_for_year
from geo.stages.cloud import CloudMaskConfig, scl_clear_mask
from geo.stages.composite import median_composite
from geo.errors import CrsError, RasterError
from geo.grid import GeoGrid
from geo.results.sites import SiteConfig, group_sites
from geo.stack import ReflectanceStack
from geo.stages.vectorize import class_areas, polygonize


def test_scl_mask_clear_classes_and_buffer():
    scl = np.full((20, 20), 4, np.uint8)
    scl[10, 10] = 9  # a cloud pixel
    scl[0, 0] = 0    # no data
    scl[5, 15] = 6   # water stays clear
    m = scl_clear_mask(scl, CloudMaskConfig(buffer_px=2))
    assert m.dtype == bool
    assert not m[10, 10] and not m[12, 10] and not m[10, 8]  # cloud and its 2-px buffer
    assert m[13, 10] and m[5, 15]
    assert not m[0, 0]
    unbuffered = scl_clear_mask(scl, CloudMaskConfig(buffer_px=0))
    assert unbuffered[11, 10] and not unbuffered[10, 10]


def test_scl_mask_time_axis_buffers_only_in_space():
    scl = np.full((3, 9, 9), 5, np.uint8)
    scl[1, 4, 4] = 3  # shadow in the middle scene only
    m = scl_clear_mask(scl, CloudMaskConfig(buffer_px=1))
    assert m[0].all() and m[2].all()
    assert not m[1, 4, 4] and not m[1, 4, 5] and m[1, 4, 6]


def _stack(grid, data, scl=None):
    t = data.shape[0]
    times = tuple(dt.datetime(2020, 1, 1 + i) for i in range(t))
    return ReflectanceStack(data.astype(np.float32), scl, tuple(f"B0{i + 2}" for i in range(data.shape[1])),
                            times, tuple(f"item{i}" for i in range(t)), grid)


def test_median_composite_uses_only_clear(utm_grid):
    h, w = utm_grid.shape
    data = np.zeros((3, 2, h, w), np.float32)
    data[0] = 0.1
    data[1] = 0.2
    data[2] = 0.9  # cloudy scene, masked out
    clear = np.ones((3, h, w), bool)
    clear[2] = False
    clear[:, 0, 0] = False           # never clear → NaN
    data[0, 0, 1, 1] = np.nan       # a nodata value makes that observation unusable
    comp = median_composite(_stack(utm_grid, data), clear)
    assert comp.data.shape == (2, h, w)
    assert np.isclose(comp.data[0, 5, 5], 0.15)
    assert np.isnan(comp.data[:, 0, 0]).all() and comp.clear_count[0, 0] == 0
    assert comp.clear_count[5, 5] == 2 and comp.clear_count[1, 1] == 1
    assert np.isclose(comp.data[0, 1, 1], 0.2)


def test_median_composite_rejects_mismatched_mask(utm_grid):
    data = np.zeros((2, 1, *utm_grid.shape), np.float32)
    with pytest.raises(RasterError):
        median_composite(_stack(utm_grid, data), np.ones((3, *utm_grid.shape), bool))


def test_polygonize_areas_classes_and_confidence(utm_grid):
    cls = np.zeros(utm_grid.shape, np.uint8)
    cls[5:15, 5:25] = 1          # 10×20 px cleared = 20,000 m²
    cls[8:11, 8:11] = 2          # 3×3 pond inside = 900 m² (hole in the cleared polygon)
    cls[30:32, 40:41] = 2        # 2 px pond = 200 m²
    conf = np.where(cls == 2, 0.9, 0.5).astype(np.float32)
    gdf = polygonize(cls, utm_grid, confidence=conf)
    assert gdf.crs.to_epsg() == 32647
    assert sorted(gdf["class"]) == [1, 2, 2]
    areas = class_areas(gdf)
    assert areas["cleared_land"] == pytest.approx(20000 - 900)
    assert areas["leaching_pond"] == pytest.approx(1100)
    assert gdf.loc[gdf["class"] == 2, "confidence"].round(3).eq(0.9).all()
    assert gdf.geometry.is_valid.all()
    small_dropped = polygonize(cls, utm_grid, min_area_m2=500)
    assert len(small_dropped) == 2
    # ponds have their own floor: the 200 m² pond stays while cleared land under 500 m² would go
    ponds_kept = polygonize(cls, utm_grid, min_area_m2=500, min_pond_area_m2=100)
    assert sorted(ponds_kept["class"]) == [1, 2, 2]
    assert sorted(polygonize(cls, utm_grid, min_area_m2=0, min_pond_area_m2=300)["class"]) == [1, 2]


def test_polygonize_empty_and_region(utm_grid):
    empty = polygonize(np.zeros(utm_grid.shape, np.uint8), utm_grid)
    assert len(empty) == 0 and list(empty.columns)[:3] == ["class", "class_name", "area_m2"]
    cls = np.ones(utm_grid.shape, np.uint8)
    region = np.zeros(utm_grid.shape, bool)
    region[:10, :10] = True
    gdf = polygonize(cls, utm_grid, region=region)
    assert gdf["area_m2"].sum() == pytest.approx(100 * 100)


def test_polygonize_refuses_geographic_grid(utm_grid):
    geo = GeoGrid("EPSG:4326", utm_grid.transform, utm_grid.width, utm_grid.height)
    with pytest.raises(CrsError):
        polygonize(np.zeros(geo.shape, np.uint8), geo)


def _fp(rows, crs=32647):
    return gpd.GeoDataFrame([{"class": c, "area_m2": g.area, "geometry": g} for c, g in rows], geometry="geometry", crs=crs)


def test_group_sites_by_distance_and_pond_rule():
    a_pond, a_clear = box(0, 0, 30, 30), box(40, 0, 200, 100)     # 10 m apart → one site
    b_pond = box(1000, 0, 1040, 40)                                 # far away → second site
    c_clear = box(3000, 0, 3300, 300)                               # cleared land without ponds → no site
    fp = _fp([(2, a_pond), (1, a_clear), (2, b_pond), (1, c_clear)])
    sites, member = group_sites(fp, SiteConfig(link_distance_m=100, min_footprint_m2=0))
    assert len(sites) == 2
    assert member[0] == member[1] != 0 and member[2] not in (0, member[0]) and member[3] == 0
    s = sites.set_index("site_id").loc[member[0]]
    assert s["n_ponds"] == 1 and s["footprint_area_m2"] == pytest.approx(900 + 16000)
    assert s["extent_area_m2"] >= s["footprint_area_m2"]
    joined, _ = group_sites(fp, SiteConfig(link_distance_m=2000, min_footprint_m2=0))
    assert len(joined) == 1


def test_group_sites_needs_projected_crs():
    with pytest.raises(CrsError):
        group_sites(_fp([(2, box(0, 0, 1, 1))], crs=4326))


def test_summary_growth_and_low_confidence_not_shrinkage():
    rows = [dict(period="a", footprint_area_m2=100.0, pond_area_m2=10.0, cleared_area_m2=90.0, site_count=10,
                 site_extent_m2=200.0, pond_count=5, clear_fraction=0.95, n_scenes=4),
            dict(period="b", footprint_area_m2=160.0, pond_area_m2=20.0, cleared_area_m2=140.0, site_count=14,
                 site_extent_m2=300.0, pond_count=7, clear_fraction=0.9, n_scenes=4),
            dict(period="c", footprint_area_m2=50.0, pond_area_m2=5.0, cleared_area_m2=45.0, site_count=3,
                 site_extent_m2=90.0, pond_count=2, clear_fraction=0.3, n_scenes=1)]
    df = summarize(rows, ChangeConfig(min_clear_fraction=0.8))
    assert df.loc[1, "footprint_growth_pct"] == pytest.approx(60.0)
    assert df.loc[1, "site_count_growth_pct"] == pytest.approx(40.0)
    assert df.loc[1, "trend"] == "growth"
    assert bool(df.loc[2, "low_confidence"]) and df.loc[2, "trend"].startswith("uncertain")


def test_site_changes_classes():
    prev = gpd.GeoDataFrame({"site_id": [1, 2], "footprint_area_m2": [100.0, 100.0]},
                            geometry=[box(0, 0, 10, 10), box(100, 0, 110, 10)], crs=32647)
    curr = gpd.GeoDataFrame({"site_id": [1, 2], "footprint_area_m2": [150.0, 80.0]},
                            geometry=[box(0, 0, 12, 12), box(500, 0, 510, 10)], crs=32647)
    ch = site_changes(prev, curr, period_from="a", period_to="b")
    assert sorted(ch["change"]) == ["abandoned", "expanded", "new"]


def test_period_row_counts():
    fp = _fp([(2, box(0, 0, 10, 10)), (1, box(20, 0, 40, 10))])
    sites, _ = group_sites(fp, SiteConfig(min_footprint_m2=0))
    row = period_row("x", fp, sites, clear_fraction=0.5, n_scenes=3)
    assert row["pond_area_m2"] == 100 and row["cleared_area_m2"] == 200 and row["site_count"] == 1


def test_claims_matched_to_seasons():
    assert season_for_year(2021) == "2020-21"
    summary = summarize([
        dict(period=p, footprint_area_m2=1.0, pond_area_m2=0.0, cleared_area_m2=1.0, site_count=n, site_extent_m2=e,
             pond_count=0, clear_fraction=1.0, n_scenes=3)
        for p, n, e in [("2020-21", 10, 100.0), ("2021-22", 12, 120.0), ("2022-23", 15, 160.0)]])
    claims = compare_claims(summary).set_index("source")
    gw = claims.loc["Global Witness (2024)"]
    assert gw["matched_periods"] == "2020-21→2022-23" and gw["measured_growth_pct"] == pytest.approx(50.0)
    mw = claims.loc["Myanmar Witness (2024)"]
    assert mw["verdict"] == "not comparable"  # the run does not cover 2017-18 → 2023-24 (nor, here, any AOI)
    assert "2017-18" in mw["reason"]

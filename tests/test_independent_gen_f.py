"""Fast tests of the independent gen_f scene generator (tiny sizes)."""
import numpy as np
import pytest

from benchmarks.independent import gen_f
from benchmarks.independent.gen_f import canvas as C


def test_api_constants():
    assert gen_f.VARIANTS == ("base", "pale", "rough")
    assert gen_f.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


@pytest.mark.parametrize("variant", ["base", "pale", "rough"])
def test_shapes_dtypes_ranges(variant):
    x, y = gen_f.scene(3, variant, 48)
    assert x.shape == (6, 48, 48) and x.dtype == np.float32
    assert y.shape == (48, 48) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}
    assert np.allclose(x * 1e4, np.round(x * 1e4), atol=1e-2)      # quantised to 1e-4


def test_odd_size_and_determinism():
    a = gen_f.scene(5, "rough", 37)
    b = gen_f.scene(5, "rough", 37)
    assert a[0].shape == (6, 37, 37)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = gen_f.scene(6, "rough", 37)
    assert not np.array_equal(a[0], c[0])


def test_scene_is_first_season_and_variants_share_sites():
    x, y = gen_f.scene(7, "base", 64)
    for n in (1, 3):
        s = gen_f.series(7, "base", seasons=n, size=64)
        assert len(s) == n
        assert np.array_equal(s[0][0], x) and np.array_equal(s[0][1], y)
    for v in ("pale", "rough"):
        assert np.array_equal(gen_f.scene(7, v, 64)[1], y)      # same landscape and sites


@pytest.mark.parametrize("bad", [dict(variant="foo"), dict(size=15), dict(size=8)])
def test_value_errors_scene(bad):
    kw = dict(seed=1, variant="base", size=32)
    kw.update(bad)
    with pytest.raises(ValueError):
        gen_f.scene(**kw)


def test_value_errors_series():
    with pytest.raises(ValueError):
        gen_f.series(1, "base", seasons=0, size=32)
    with pytest.raises(ValueError):
        gen_f.series(1, "nope", seasons=2, size=32)


def test_series_growth():
    seq = gen_f.series(11, "base", seasons=4, size=96)
    fp = [int((y > 0).sum()) for _, y in seq]
    assert fp[0] > 0
    assert fp[-1] > fp[0]


def test_truth_rule_constructed_case():
    cv = C.Canvas(2)                      # 2x2 output pixels, 8x8 fine cells
    pond = cv.add(np.zeros(6), 2)
    mine = cv.add(np.zeros(6), 1)
    cv.obj[0:2, 0:4] = pond               # pixel (0,0): 8/16 pond -> 2
    cv.obj[0:4, 4:6] = pond               # pixel (0,1): 8/16 pond -> 2
    cv.obj[4:6, 0:4] = pond               # pixel (1,0): 8 pond ... plus
    cv.obj[6:7, 0:4] = mine               # ... -> still 2 (pond >= 1/2)
    cv.obj[4:5, 4:8] = pond               # pixel (1,1): 4 pond + 3 mine = 7/16 -> 0
    cv.obj[5:6, 4:7] = mine
    y = cv.truth()
    assert y.tolist() == [[2, 2], [2, 0]]
    cv.obj[6:7, 4:5] = mine               # now 8/16 footprint incl. pond -> 1
    assert cv.truth()[1, 1] == 1


def test_spectral_sanity():
    from benchmarks.independent.gen_f import spectra as S
    r, t = S.leaf()
    b = S.to_bands(S.canopy(r, t, 5.0, S.soil(), 0.3))
    assert b[3] > 4 * b[2]                    # red edge: NIR >> red for forest
    red = S.to_bands(S.soil(hem=0.05, goe=0.02, kao=0.3))
    assert red[2] > 2 * red[0]                # iron-oxide charge-transfer edge
    w = S.to_bands(S.water(h=3.0))
    assert w[4] < 0.02 and w[5] < 0.02        # water is black in the SWIR

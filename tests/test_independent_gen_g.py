"""Fast tests of the independent scene generator gen_g (object-based statistical model)."""
import numpy as np
import pytest

from benchmarks.independent import gen_g
from benchmarks.independent.gen_g import pools
from benchmarks.independent.gen_g.canvas import truth_from_fine


def test_constants():
    assert gen_g.VARIANTS == ("base", "pale", "rough")
    assert gen_g.BANDS == ("B02", "B03", "B04", "B08", "B11", "B12")


@pytest.mark.parametrize("variant", ["base", "pale", "rough"])
def test_shapes_dtypes_ranges(variant):
    x, y = gen_g.scene(3, variant, 48)
    assert x.shape == (6, 48, 48) and x.dtype == np.float32
    assert y.shape == (48, 48) and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2}
    q = x.astype(np.float64) * 1e4
    assert np.abs(q - np.round(q)).max() < 1e-2          # quantised to 1e-4
    assert x[3].mean() > x[2].mean()          # vegetated hills: NIR above red


def test_odd_size_and_minimum():
    x, y = gen_g.scene(1, "base", 17)
    assert x.shape == (6, 17, 17) and y.shape == (17, 17)
    x, y = gen_g.scene(1, "base", 16)
    assert x.shape == (6, 16, 16)


def test_deterministic_and_seed_dependent():
    a = gen_g.scene(7, "rough", 40)
    b = gen_g.scene(7, "rough", 40)
    c = gen_g.scene(8, "rough", 40)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_scene_is_first_season():
    x, y = gen_g.scene(5, "pale", 40)
    for n in (1, 3):
        s = gen_g.series(5, "pale", seasons=n, size=40)
        assert len(s) == n
        assert np.array_equal(s[0][0], x) and np.array_equal(s[0][1], y)


def test_variants_share_landscape_and_sites():
    ys = [gen_g.scene(11, v, 48)[1] for v in gen_g.VARIANTS]
    assert all(np.array_equal(ys[0], yy) for yy in ys[1:])
    xb = gen_g.scene(11, "base", 48)[0]
    xr = gen_g.scene(11, "rough", 48)[0]
    assert not np.array_equal(xb, xr)


@pytest.mark.parametrize("kw", [dict(variant="nope"), dict(size=15), dict(size=8.5)])
def test_bad_scene_args(kw):
    args = dict(seed=0, variant="base", size=32)
    args.update(kw)
    with pytest.raises(ValueError):
        gen_g.scene(**args)


def test_bad_series_args():
    with pytest.raises(ValueError):
        gen_g.series(0, "base", seasons=0, size=32)
    with pytest.raises(ValueError):
        gen_g.series(0, "bad", seasons=2, size=32)


def test_truth_rule_constructed():
    f = 3
    foot = np.zeros((6, 6), bool)
    pond = np.zeros((6, 6), bool)
    # pixel (0,0): 5/9 pond -> 2 ; pixel (0,1): 4/9 pond + 1/9 footprint -> 1 ; pixel (1,0): 4/9 foot -> 0
    pond[0, 0:3] = True
    pond[1, 0:2] = True
    pond[0:2, 3:5] = True
    foot[2, 3] = True
    foot[3, 0:3] = True
    foot[4, 0] = True
    y = truth_from_fine(foot, pond, f)
    assert y[0, 0] == 2 and y[0, 1] == 1 and y[1, 0] == 0 and y[1, 1] == 0


def test_series_grows():
    fp0 = fp1 = 0
    for seed in (0, 1, 2):
        seq = gen_g.series(seed, "base", seasons=4, size=96)
        assert len(seq) == 4
        fp0 += (seq[0][1] > 0).sum()
        fp1 += (seq[-1][1] > 0).sum()
    assert fp1 > 1.2 * fp0


def test_mining_present_and_ponds_somewhere():
    ys = [gen_g.series(s, "base", seasons=2, size=96)[-1][1] for s in (0, 1, 2)]
    assert all((y > 0).any() for y in ys)
    assert any((y == 2).any() for y in ys)


def test_pool_templates_exclude_holdout():
    t = pools.templates()
    assert len(t) > 20
    path = pools._data_file()
    if path is not None:
        xy, typ = pools._read_points(path)
        assert len(xy) > 100
        assert sum(len(k) for k in t) == len(xy)
